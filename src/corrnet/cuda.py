"""``corrnet.cuda``: corrnet computes on the CPU; there is no CUDA backend yet."""


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0
