from kunlun.data.batching import assemble_batch
from kunlun.data.dataset import EventDataset, build_dataset
from kunlun.data.loader import EvalLoader, TrainLoader
from kunlun.data.movielens import read_movielens
from kunlun.data.spec import open_data
from kunlun.data.synthetic import SyntheticDataset, SyntheticSpec, synthetic_schema
from kunlun.data.synthetic_batch import synthetic_batch
from kunlun.data.taobao import read_taobao
from kunlun.model.batch import Batch, JaggedStream

__all__ = [
    "Batch", "EvalLoader", "EventDataset", "JaggedStream", "SyntheticDataset", "SyntheticSpec", "TrainLoader",
    "assemble_batch", "build_dataset", "open_data", "read_movielens", "read_taobao", "synthetic_batch",
    "synthetic_schema",
]
