"""A real channel code for the digital baseline: CRC-24A, 5G NR LDPC and Gray QAM, through Sionna.

Transmitter (`encode_bits`): the file's bits and a CRC-24A over them (3GPP 38.212's transport-block
CRC) are split into codewords of the MCS's code rate; each is LDPC-encoded with 5G NR rate matching
and the 5G bit interleaver for its modulation, scrambled, and mapped to unit-power Gray QAM. Receiver
(`decode_bits`): the equalized symbols are made unbiased, demapped to bit LLRs with each symbol's
own error variance (the equalizer's; erased symbols carry no information), belief-propagation
decoded, and the CRC says whether the file came through. A real code has a threshold, not a
capacity: just above the MCS's, the file decodes exactly; a little below, almost never.

Link adaptation (`choose_mcs`): the highest-rate MCS of 3GPP 38.214's 256-QAM table (Table
5.1.3.1-2) whose measured threshold is at most the design SNR less a 0.5 dB margin. The thresholds
are the AWGN Es/N0 at which an 8064-bit codeword decodes with a block error rate of at most 1 %,
measured by `semcom bench mcs` (tools/evaluation/mcs.py). A frame's codewords are all of one length, at most
8064 bits; shorter ones (a small frame, or 1.5 codewords' worth split in two) have a slightly higher
threshold.

Sionna and torch are imported at the first coded frame: an int8 receiver decoding other codecs
never loads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CRC_BITS = 24  # CRC-24A
CODEWORD_BITS = 8064  # coded bits per codeword: a multiple of 2, 4, 6 and 8 (every modulation's bits per symbol)
MIN_CODEWORD_BITS = 240  # a shorter frame carries no file
DECODER_ITERATIONS = 20
MIN_MOTHER_RATE = 0.2  # Sionna's 5G encoder's lowest rate; lower MCS rates repeat its bits cyclically, as 5G's
# circular buffer does, and the receiver adds the repeated bits' LLRs
SCRAMBLER_SEED = 0x5C4A  # both ends draw the same scrambling sequence
UNRELIABLE = 1e6  # the error variance given to an erased symbol: its LLRs are ~0
DECODE_CHUNK_SYMBOLS = 8192  # demapped and decoded at a time: ~115 MB at 256-QAM
MODULATIONS = {2: "QPSK", 4: "16-QAM", 6: "64-QAM", 8: "256-QAM"}


@dataclass(frozen=True)
class MCS:
    """One modulation and coding scheme: bits per QAM symbol, LDPC code rate, and the AWGN Es/N0 (dB)
    above which its codewords decode (block error rate <= 1 %, 8064 coded bits)."""

    index: int
    bits_per_symbol: int
    code_rate: float
    threshold_db: float

    @property
    def modulation(self) -> str:
        return MODULATIONS[self.bits_per_symbol]

    @property
    def spectral_efficiency(self) -> float:
        """Information bits per complex channel use."""
        return self.bits_per_symbol * self.code_rate

    def describe(self) -> str:
        return f"MCS {self.index} ({self.modulation}, rate {self.code_rate:.3f}, threshold {self.threshold_db:+.2f} dB)"


# (bits per symbol, code rate x 1024) from 3GPP TS 38.214 Table 5.1.3.1-2, and the thresholds measured
# by `semcom bench mcs --codewords 100` (AMD EPYC, Sionna 2.2.0, 20 BP iterations, boxplus-phi): 1.3 to
# 2.9 dB above the Shannon limit of each MCS's spectral efficiency.
_TABLE = ((2, 120, -5.8), (2, 193, -3.7), (2, 308, -1.6), (2, 449, 0.5), (2, 602, 2.4),
          (4, 378, 4.5), (4, 434, 5.3), (4, 490, 6.2), (4, 553, 7.3), (4, 616, 8.1), (4, 658, 8.7),
          (6, 466, 9.9), (6, 517, 10.8), (6, 567, 11.9), (6, 616, 12.8), (6, 666, 13.7), (6, 719, 14.7),
          (6, 772, 15.6), (6, 822, 16.6), (6, 873, 17.7),
          (8, 682.5, 18.6), (8, 711, 19.2), (8, 754, 20.3), (8, 797, 21.2), (8, 841, 22.3), (8, 885, 23.4),
          (8, 916.5, 24.3), (8, 948, 25.2))
MCS_TABLE = tuple(MCS(index, bits, rate / 1024, threshold) for index, (bits, rate, threshold) in enumerate(_TABLE))


# The thresholds are per codeword (block errors <= 1 %), but a file is tens of codewords with no
# retransmission: at the threshold itself whole files were lost (the sweep on Kodak: avif_ldpc at
# k/n 1/6, 10 dB, 22.6 dB against 33.2 at 5 dB). Link adaptation keeps this margin in hand, the
# waterfall's width (none of 40 codewords failed 0.5 dB above a threshold).
LINK_MARGIN_DB = 0.5


def choose_mcs(design_snr_db: float) -> MCS | None:
    """The highest-rate MCS whose threshold is at most the design SNR less LINK_MARGIN_DB; None below
    the lowest."""
    usable = [mcs for mcs in MCS_TABLE if mcs.threshold_db <= design_snr_db - LINK_MARGIN_DB]
    return max(usable, key=lambda mcs: mcs.spectral_efficiency) if usable else None


@dataclass(frozen=True)
class Layout:
    """How a frame's channel uses hold codewords: `codewords` of `codeword_bits` coded bits, each
    carrying `info_bits` of the file-plus-CRC."""

    mcs: MCS
    codeword_bits: int
    codewords: int

    @property
    def info_bits(self) -> int:
        return info_bits(self.mcs, self.codeword_bits)

    @property
    def file_bytes(self) -> int:
        """The largest file the layout carries (with its CRC)."""
        return max(0, (self.codewords * self.info_bits - CRC_BITS) // 8)

    @property
    def mother_bits(self) -> int:
        """The LDPC codeword's own length: codeword_bits, or fewer where the code rate is below
        MIN_MOTHER_RATE (a multiple of the bits per symbol, for the 5G interleaver)."""
        if self.info_bits >= MIN_MOTHER_RATE * self.codeword_bits:
            return self.codeword_bits
        return int(self.info_bits / MIN_MOTHER_RATE) // self.mcs.bits_per_symbol * self.mcs.bits_per_symbol

    @property
    def circular_buffer(self) -> np.ndarray:
        """int64 [codeword_bits]: which of the LDPC codeword's bits each sent bit is."""
        return np.arange(self.codeword_bits) % self.mother_bits

    @property
    def symbols(self) -> int:
        return self.codewords * self.codeword_bits // self.mcs.bits_per_symbol


def info_bits(mcs: MCS, codeword_bits: int) -> int:
    return int(mcs.code_rate * codeword_bits)  # floor: never above the table's rate (Sionna warns past 948/1024)


def largest_layout(mcs: MCS, channel_uses: int) -> Layout | None:
    """The codewords of the MCS that fill `channel_uses` complex symbols: as few as keep each at most
    CODEWORD_BITS, all of one length (5G's code-block segmentation), a multiple of 24 bits (of every
    modulation's bits per symbol); None if not even MIN_CODEWORD_BITS fit."""
    capacity = channel_uses * mcs.bits_per_symbol
    codewords = max(1, -(-capacity // CODEWORD_BITS))
    length = capacity // codewords // 24 * 24
    return Layout(mcs, length, codewords) if length >= MIN_CODEWORD_BITS else None


def layout_for(mcs: MCS, codeword_bits: int, file_bytes: int) -> Layout:
    """The codewords a file of `file_bytes` needs at this MCS and codeword length."""
    return Layout(mcs, codeword_bits, max(1, math.ceil((8 * file_bytes + CRC_BITS) / info_bits(mcs, codeword_bits))))


def encode_bits(payload: bytes, layout: Layout) -> np.ndarray:
    """The file -> complex64 [layout.symbols] unit-power QAM symbols (CRC, LDPC, 5G interleaver, scrambling,
    Gray map)."""
    with_crc = np.unpackbits(np.frombuffer(payload + crc24a(payload).to_bytes(3, "big"), dtype=np.uint8))
    info = np.zeros(layout.codewords * layout.info_bits, np.uint8)
    info[:with_crc.size] = with_crc
    return encode_codewords(info.reshape(layout.codewords, layout.info_bits), layout)


def encode_codewords(info: np.ndarray, layout: Layout) -> np.ndarray:
    """uint8 [codewords, info bits] -> complex64 [layout.symbols]: LDPC-encoded, interleaved, QAM-mapped."""
    torch = _torch()
    with torch.no_grad():
        encoder, _ = _code(layout.info_bits, layout.mother_bits, layout.mcs.bits_per_symbol)
        coded = encoder(torch.from_numpy(info).float())[:, layout.circular_buffer].reshape(1, -1)
        scrambled = (coded + torch.from_numpy(scrambling_sequence(coded.numel()))) % 2
        symbols = _modem(layout.mcs.bits_per_symbol)[0](scrambled)
    return symbols.reshape(-1).numpy().astype(np.complex64)


def decode_bits(symbols: np.ndarray, error_variance: np.ndarray, mmse: bool, layout: Layout,
                file_bytes: int) -> bytes | None:
    """Equalized symbols and their error variances -> the file, or None when the CRC fails."""
    bits = decode_codewords(symbols, error_variance, mmse, layout).reshape(-1)[:8 * file_bytes + CRC_BITS]
    received = np.packbits(bits).tobytes()
    payload, check = received[:file_bytes], int.from_bytes(received[file_bytes:], "big")
    return payload if crc24a(payload) == check else None


def decode_codewords(symbols: np.ndarray, error_variance: np.ndarray, mmse: bool, layout: Layout) -> np.ndarray:
    """Equalized symbols -> uint8 [codewords, info bits], each codeword's hard decision after BP decoding,
    DECODE_CHUNK_SYMBOLS at a time: the APP demapper's memory grows with the symbols times the
    constellation's size (about 14 kB a 256-QAM symbol)."""
    torch = _torch()
    unbiased, variance = unbiased_estimate(symbols, error_variance, mmse)
    flips = 1.0 - 2.0 * torch.from_numpy(scrambling_sequence(layout.codewords * layout.codeword_bits))
    per_codeword = layout.codeword_bits // layout.mcs.bits_per_symbol
    step = max(1, DECODE_CHUNK_SYMBOLS // per_codeword)  # codewords per chunk
    _, demapper = _modem(layout.mcs.bits_per_symbol)
    _, decoder = _code(layout.info_bits, layout.mother_bits, layout.mcs.bits_per_symbol)
    buffer = torch.from_numpy(layout.circular_buffer)
    decided = []
    with torch.no_grad():
        for first in range(0, layout.codewords, step):
            count = min(step, layout.codewords - first)
            span = slice(first * per_codeword, (first + count) * per_codeword)
            llrs = demapper(torch.from_numpy(unbiased[span]).reshape(1, -1),
                            torch.from_numpy(variance[span]).reshape(1, -1)).reshape(-1)
            llrs = llrs * flips[first * layout.codeword_bits:(first + count) * layout.codeword_bits]  # descrambled
            mother = torch.zeros(count, layout.mother_bits).index_add_(  # repeated bits: their LLRs add
                1, buffer, llrs.reshape(count, layout.codeword_bits))
            decided.append(decoder(mother).numpy().astype(np.uint8))
    return np.concatenate(decided)


def crc24a(data: bytes) -> int:
    """3GPP TS 38.212's CRC-24A (g = D^24 + D^23 + D^18 + D^17 + D^14 + D^11 + D^10 + D^7 + D^6 + D^5 +
    D^4 + D^3 + D + 1; register 0, MSB first), byte by byte from a table: stateless and O(bytes)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ _CRC24A_TABLE[((crc >> 16) ^ byte) & 0xFF]
    return crc


def _crc24a_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc = (crc << 1) ^ 0x864CFB if crc & 0x800000 else crc << 1
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24A_TABLE = _crc24a_table()


def scrambling_sequence(length: int) -> np.ndarray:
    """float32 [length] of pseudo-random 0/1 that the coded bits are XORed with, as 5G scrambles them:
    without it the zero padding of a last codeword maps to one constellation point again and again
    (the frame's power drifted 19 % from 1 at 64-QAM)."""
    return np.random.default_rng(SCRAMBLER_SEED).integers(0, 2, length).astype(np.float32)


def unbiased_estimate(symbols: np.ndarray, error_variance: np.ndarray, mmse: bool) -> tuple[np.ndarray, np.ndarray]:
    """The equalizer's estimates as x + noise of a known variance, what a demapper assumes.

    An MMSE estimate is shrunk: E[x_hat | x] = (1 - e) x for unit-power x with error variance e, so
    x_hat / (1 - e) is unbiased with noise variance e / (1 - e). A ZF estimate (or the received
    symbol without fading) already is x + noise of variance e. Erased symbols (e infinite, or e = 1:
    nothing got through) get the variance UNRELIABLE."""
    error = np.asarray(error_variance, dtype=np.float64)
    if mmse:
        gain = 1.0 - error
        usable = np.isfinite(error) & (gain > 1e-9)
        estimate = np.where(usable, symbols / np.where(usable, gain, 1.0), 0)
        variance = np.where(usable, error / np.where(usable, gain, 1.0), UNRELIABLE)
    else:
        usable = np.isfinite(error)
        estimate, variance = np.where(usable, symbols, 0), np.where(usable, error, UNRELIABLE)
    variance = np.clip(variance, 1e-6, UNRELIABLE)  # a noiseless channel still gives finite LLRs
    return estimate.astype(np.complex64), variance.astype(np.float32)


def _torch():
    import torch  # not at import: an int8 receiver decoding other codecs stays without torch

    return torch


@lru_cache(maxsize=64)  # a transmitter makes a few shapes per MCS: 8064 bits, and shorter for small frames
def _code(info_bits: int, codeword_bits: int, bits_per_symbol: int):
    """(5G LDPC encoder, its BP decoder) for one codeword shape; building one takes ~0.25 s."""
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

    encoder = LDPC5GEncoder(info_bits, codeword_bits, num_bits_per_symbol=bits_per_symbol, device="cpu")
    return encoder, LDPC5GDecoder(encoder, hard_out=True, num_iter=DECODER_ITERATIONS, device="cpu")


@lru_cache(maxsize=8)
def _modem(bits_per_symbol: int):
    """(Gray QAM mapper, max-log-free APP demapper) of unit average power."""
    from sionna.phy.mapping import Demapper, Mapper

    return Mapper("qam", bits_per_symbol, device="cpu"), Demapper("app", "qam", bits_per_symbol, device="cpu")
