from kunlun.kernels.gdpa.flops import allowed_pairs, self_attention_pairs
from kunlun.kernels.gdpa.op import ACTIVATIONS, gdpa

__all__ = ["ACTIVATIONS", "allowed_pairs", "gdpa", "self_attention_pairs"]
