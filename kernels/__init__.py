from kunlun.kernels import hardware
from kunlun.kernels.backend import get_backend, set_backend, use_backend
from kunlun.kernels.gdpa import gdpa

__all__ = ["gdpa", "get_backend", "hardware", "set_backend", "use_backend"]
