"""`int8kit info` reports the loaded oneDNN and the CPU's int8 features as /proc/cpuinfo lists them."""

from pathlib import Path


def test_info_names_library_version_and_cpu_flags(capsys):
    from int8kit.cli import main
    from int8kit.runtime import dnnl

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"oneDNN {dnnl.library().version_string} from {dnnl.library().path}" in out
    flags = next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split()
    for feature in ("avx512_vnni", "amx_int8"):
        assert (feature in out.split("ISA flags:")[1].splitlines()[0]) == (feature in flags)
