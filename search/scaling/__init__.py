"""Scaling laws over budgets (DESIGN.md "Results"; KUNLUN.md section 4): `fit` (NE against compute, pure numpy),
`allocation` (the best allocation extrapolated to a budget), `report` (scaling.json, its summary) and `plot`
(scaling.png). The seed repeats of each budget's best trial are search/reeval.py's."""
