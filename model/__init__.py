from kunlun.model.batch import Batch, JaggedStream
from kunlun.model.config import KunlunConfig, preset_names
from kunlun.model.count import count_flops
from kunlun.model.flops import FlopReport, OpRecord
from kunlun.model.kunlun import KunlunModel
from kunlun.model.metrics import auc, calibration, evaluate, logloss, ne
from kunlun.model.train import FitResult, NonFiniteLossError, fit
from kunlun.model.yamlio import ConfigError

__all__ = [
    "Batch", "ConfigError", "FitResult", "FlopReport", "JaggedStream", "KunlunConfig", "KunlunModel",
    "NonFiniteLossError", "OpRecord", "auc", "calibration", "count_flops", "evaluate", "fit", "logloss", "ne",
    "preset_names",
]
