import pytest
import torch

from kunlun.kernels import hardware


@pytest.mark.parametrize("alias,name", [
    ("b200", "B200 HGX (1000 W)"), ("H100", "H100 SXM"), ("h200", "H200 SXM"),
    ("gb200", "B200 in GB200 (1200 W)"), ("h100-pcie", "H100 PCIe"), ("H200 SXM", "H200 SXM"),
])
def test_lookup_by_name_or_alias(alias, name):
    assert hardware.lookup(alias).name == name


def test_lookup_rejects_unknown_names():
    with pytest.raises(KeyError):
        hardware.lookup("a100")


def test_datasheet_numbers_of_the_budget_gpu():
    b200 = hardware.lookup("b200")
    assert b200.bf16_flops == 2.25e15 and b200.fp8_flops == 2 * b200.bf16_flops
    assert b200.hbm_bandwidth == 8e12 and b200.memory_bytes == 180e9
    assert b200.ridge == pytest.approx(281.25)
    assert b200.mufu_ops == 16 * 148 * 1.965e9
    assert b200.peak_flops(torch.bfloat16) == b200.bf16_flops
    assert b200.peak_flops(torch.float32) == b200.tf32_flops


@pytest.mark.parametrize("spec", hardware.GPUS, ids=lambda s: s.name)
def test_every_entry_is_complete_and_consistent(spec):
    assert spec.source and spec.aliases
    assert spec.fp8_flops == pytest.approx(2 * spec.bf16_flops, rel=1e-3)
    assert spec.tf32_flops == pytest.approx(spec.bf16_flops / 2, rel=1e-3)
    assert spec.sm_count > 0 and spec.boost_clock_hz > 1e9 and spec.memory_bytes > 1e10
    with pytest.raises(ValueError):
        spec.peak_flops(torch.float64)


@pytest.mark.parametrize("device_name,alias", [
    ("NVIDIA B200", "b200"), ("NVIDIA GB200", "gb200"), ("NVIDIA H100 80GB HBM3", "h100"),
    ("NVIDIA H100 SXM5 80GB", "h100"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200"),
])
def test_detect_known_device_names(device_name, alias):
    assert hardware.detect(device_name) is hardware.lookup(alias)


@pytest.mark.parametrize("device_name", ["NVIDIA A100-SXM4-80GB", "NVIDIA H100 NVL", "NVIDIA H200 NVL",
                                         "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "NVIDIA H100", "Tesla T4", ""])
def test_detect_never_guesses(device_name):
    assert hardware.detect(device_name) == hardware.UNKNOWN


def test_detect_without_cuda_is_unknown(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.detect() == hardware.UNKNOWN
