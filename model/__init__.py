from kunlun.model.batch import Batch, JaggedStream
from kunlun.model.config import KunlunConfig, preset_names
from kunlun.model.count import count_flops
from kunlun.model.flops import FlopReport, OpRecord
from kunlun.model.kunlun import KunlunModel
from kunlun.model.yamlio import ConfigError

__all__ = [
    "Batch", "ConfigError", "FlopReport", "JaggedStream", "KunlunConfig", "KunlunModel", "OpRecord",
    "count_flops", "preset_names",
]
from kunlun.model.metrics import auc, calibration, evaluate, logloss, ne
from kunlun.model.train import FitResult, NonFiniteLossError, fit

__all__ += ["FitResult", "NonFiniteLossError", "auc", "calibration", "evaluate", "fit", "logloss", "ne"]
