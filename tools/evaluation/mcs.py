"""`semcom bench mcs`: measures each MCS's threshold, the AWGN Es/N0 from which its 8064-bit LDPC
codewords decode with a block error rate of at most 1 %, over the emulator's own AWGN. The thresholds
in common/phy/ldpc.py's table come from this command.

Per MCS, a bisection on a 0.1 dB grid between the Shannon limit of its spectral efficiency (no code
can work below it) and 6 dB above: at each SNR `codewords` random codewords are sent; the SNR passes
when at most 1 % of them fail. A block error rate is monotone in the SNR, so bisection finds the
threshold with about 6 measurements.
"""

from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from semcom.channel_emulator.awgn import AWGN, noise_variance
from semcom.common.phy import ldpc

GRID_DB = 0.1
SEARCH_ABOVE_SHANNON_DB = 6.0


def block_error_rate(mcs: ldpc.MCS, snr_db: float, codewords: int, rng: np.random.Generator,
                     codeword_bits: int = ldpc.CODEWORD_BITS) -> float:
    """The fraction of `codewords` random codewords of the MCS that fail over AWGN at `snr_db`."""
    layout = ldpc.Layout(mcs, codeword_bits, codewords)
    info = rng.integers(0, 2, (codewords, layout.info_bits), dtype=np.uint8)
    received = AWGN(rng=rng)(ldpc.encode_codewords(info, layout), snr_db)
    decoded = ldpc.decode_codewords(received, np.full(received.size, noise_variance(snr_db), np.float32), False, layout)
    return float(np.mean(np.any(decoded != info, axis=1)))


def shannon_limit_db(spectral_efficiency: float) -> float:
    """The Es/N0 at which a complex Gaussian channel's capacity equals the spectral efficiency."""
    return 10 * math.log10(2 ** spectral_efficiency - 1)


def threshold_db(mcs: ldpc.MCS, codewords: int, rng: np.random.Generator, max_error_rate: float = 0.01) -> float:
    low = math.floor(shannon_limit_db(mcs.spectral_efficiency) / GRID_DB)  # fails here, whatever the code
    high = low + round(SEARCH_ABOVE_SHANNON_DB / GRID_DB)
    if block_error_rate(mcs, high * GRID_DB, codewords, rng) > max_error_rate:
        return math.inf
    while high - low > 1:
        middle = (low + high) // 2
        if block_error_rate(mcs, middle * GRID_DB, codewords, rng) <= max_error_rate:
            high = middle
        else:
            low = middle
    return high * GRID_DB


def bench_mcs(codewords: int = 100, indices: tuple[int, ...] | None = None, seed: int = 0, threads: int = 1) -> str:
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    chosen = [mcs for mcs in ldpc.MCS_TABLE if indices is None or mcs.index in indices]
    lines = [f"MCS thresholds: AWGN Es/N0 for block error rate <= 1 % over {codewords} codewords of "
             f"{ldpc.CODEWORD_BITS} coded bits, {ldpc.DECODER_ITERATIONS} BP iterations",
             f"{'MCS':>3} {'modulation':>10} {'rate':>6} {'bits/use':>8} {'Shannon dB':>10} {'threshold dB':>12} "
             f"{'gap dB':>6} {'shipped dB':>10}"]
    for mcs in tqdm(chosen, desc="MCS thresholds", unit="MCS"):
        measured = threshold_db(mcs, codewords, rng)
        limit = shannon_limit_db(mcs.spectral_efficiency)
        lines.append(f"{mcs.index:>3} {mcs.modulation:>10} {mcs.code_rate:>6.3f} {mcs.spectral_efficiency:>8.3f} "
                     f"{limit:>10.2f} {measured:>12.2f} {measured - limit:>6.2f} {mcs.threshold_db:>10.2f}")
    return "\n".join(lines)
