"""The codec measurement behind docs/compression.md: ratio and compress /
decompress time of gzip (levels 1 and 6, the standard library's zlib) and
zstd (levels 1 and 3, the ``zstandard`` package, measured only when it is
installed: CacheGrid does not depend on it) on the shapes of
compression_values.py. Best of five repeats, microseconds per call.

    python benchmarks/compression_codecs.py
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

from compression_values import SHAPES

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]


def best_us(function: Callable[[bytes], bytes], argument: bytes, number: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(number):
            function(argument)
        best = min(best, (time.perf_counter() - started) / number)
    return best * 1e6


def gzip_codec(level: int) -> Codec:
    def compress(data: bytes) -> bytes:
        packer = zlib.compressobj(level, zlib.DEFLATED, 31)
        return packer.compress(data) + packer.flush()

    return compress, lambda data: zlib.decompress(data, 31)


def codecs() -> dict[str, Codec]:
    found = {"gzip -1": gzip_codec(1), "gzip -6": gzip_codec(6)}
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return found
    for level in (1, 3):
        found[f"zstd -{level}"] = (
            zstandard.ZstdCompressor(level=level).compress,
            zstandard.ZstdDecompressor().decompress,
        )
    return found


def main() -> None:
    print("| value | size | codec | held ÷ size | compress µs | decompress µs |")
    print("|---|---:|---|---:|---:|---:|")
    for name, make in SHAPES.items():
        value = make()
        number = max(20, 2_000_000 // len(value))
        for codec, (compress, decompress) in codecs().items():
            packed = compress(value)
            assert decompress(packed) == value
            print(
                f"| {name} | {len(value):,} | {codec} | {len(packed) / len(value):.3f} "
                f"| {best_us(compress, value, number):.0f} | {best_us(decompress, packed, number):.0f} |"
            )


if __name__ == "__main__":
    main()
