"""The machine line under every bench table tells apart CPUs sold under one model name (SIMD, L2)."""
from edgeseg.bench.report import cpu_description

XEON_LIKE = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
ZEN2_LIKE = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 asimddp\nCPU part\t: 0xd08\n"


def test_cpu_description_names_the_simd_that_decides_int8_speed():
    assert cpu_description(XEON_LIKE, 2048) == "AMD EPYC (avx512_vnni, avx512f, avx2; L2 2048 KiB per core)"
    assert cpu_description(ZEN2_LIKE, 512) == "AMD EPYC (avx2, no VNNI; L2 512 KiB per core)"
    assert cpu_description(ARM).endswith("(asimddp, asimd)")
    assert cpu_description(XEON_LIKE) != cpu_description(ZEN2_LIKE)
