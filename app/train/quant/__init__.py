"""Fake-quantization in torch for evaluating ViTs at W8A8 … W3A3: uniform/MinMax baselines, RepQ-ViT, I&S-ViT."""

from .ptq import METHODS, parse_spec, quantize, reconstruct
from .quantizer import LogSqrt2Quantizer, SULQuantizer, UniformQuantizer, log2_quant, two_shift_matmul
from .qvit import QuantConfig, QuantViT, repq_all, repq_reparameterize

__all__ = ["METHODS", "LogSqrt2Quantizer", "QuantConfig", "QuantViT", "SULQuantizer", "UniformQuantizer",
           "log2_quant", "parse_spec", "quantize", "reconstruct", "repq_all", "repq_reparameterize",
           "two_shift_matmul"]
