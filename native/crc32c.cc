// CRC-32C (Castagnoli) for shoal_native: the checksum of shared-memory segments, disk-log records
// and checkpoint files. Plain C++, no N-API: shm.cc wraps it for JavaScript. Split from shm.cc so
// each file holds one concern (segments there, checksums here).

#include "crc32c.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define SHOAL_CRC32C_X86 1
#endif

namespace shoal {
namespace {

// ---- CRC-32C (Castagnoli) ----
//
// For segment headers: the checksum a new process verifies before it trusts a segment. CRC-32C
// because x86 has it in hardware (SSE4.2 `crc32`), ~20 GB/s with three interleaved streams, and a
// portable table version (slicing-by-8, ~1-2 GB/s) gives the same values everywhere. Standard
// parameters (reflected, init and xorout 0xFFFFFFFF): crc32c("123456789") = 0xE3069283, and
// crc32c(b, crc32c(a)) = crc32c(a ++ b).

constexpr uint32_t kCrc32cPoly = 0x82F63B78;  // reflected Castagnoli polynomial

uint32_t g_crc_table[8][256];  // slicing-by-8 tables

void InitSoftwareTables() {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t crc = n;
    for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ kCrc32cPoly : crc >> 1;
    g_crc_table[0][n] = crc;
  }
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t crc = g_crc_table[0][n];
    for (int k = 1; k < 8; k++) {
      crc = g_crc_table[0][crc & 0xFF] ^ (crc >> 8);
      g_crc_table[k][n] = crc;
    }
  }
}

uint32_t SoftwareCrc(uint32_t crc, const uint8_t* data, size_t length) {
  crc = ~crc;
  while (length > 0 && (reinterpret_cast<uintptr_t>(data) & 7) != 0) {
    crc = g_crc_table[0][(crc ^ *data++) & 0xFF] ^ (crc >> 8);
    length--;
  }
  while (length >= 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    word ^= crc;
    crc = g_crc_table[7][word & 0xFF] ^ g_crc_table[6][(word >> 8) & 0xFF] ^
          g_crc_table[5][(word >> 16) & 0xFF] ^ g_crc_table[4][(word >> 24) & 0xFF] ^
          g_crc_table[3][(word >> 32) & 0xFF] ^ g_crc_table[2][(word >> 40) & 0xFF] ^
          g_crc_table[1][(word >> 48) & 0xFF] ^ g_crc_table[0][word >> 56];
    data += 8;
    length -= 8;
  }
  while (length > 0) {
    crc = g_crc_table[0][(crc ^ *data++) & 0xFF] ^ (crc >> 8);
    length--;
  }
  return ~crc;
}

#ifdef SHOAL_CRC32C_X86
// Three-way interleaved hardware CRC after Mark Adler's crc32c.c: `crc32` has a latency of 3
// cycles and a throughput of 1 per cycle, so three independent streams over adjacent blocks keep
// the unit busy; the three partial CRCs are then combined by "shifting" a CRC over a block of
// zeros with a precomputed GF(2) operator (one table per block length).
constexpr size_t kLongBytes = 8192;  // both powers of two (the zeros operator needs that)
constexpr size_t kShortBytes = 256;

uint32_t g_zeros_long[4][256];
uint32_t g_zeros_short[4][256];

uint32_t Gf2MatrixTimes(const uint32_t* matrix, uint32_t vector) {
  uint32_t sum = 0;
  while (vector != 0) {
    if (vector & 1) sum ^= *matrix;
    vector >>= 1;
    matrix++;
  }
  return sum;
}

void Gf2MatrixSquare(uint32_t* square, const uint32_t* matrix) {
  for (int n = 0; n < 32; n++) square[n] = Gf2MatrixTimes(matrix, matrix[n]);
}

// The operator that appends `byte_length` zero bytes (a power of two) to a CRC.
void ZerosOperator(uint32_t* even, size_t byte_length) {
  uint32_t odd[32];
  odd[0] = kCrc32cPoly;  // one zero bit
  uint32_t row = 1;
  for (int n = 1; n < 32; n++) {
    odd[n] = row;
    row <<= 1;
  }
  Gf2MatrixSquare(even, odd);  // two zero bits
  Gf2MatrixSquare(odd, even);  // four zero bits
  // The first square below gives one zero byte; each further square doubles it.
  do {
    Gf2MatrixSquare(even, odd);
    byte_length >>= 1;
    if (byte_length == 0) return;
    Gf2MatrixSquare(odd, even);
    byte_length >>= 1;
  } while (byte_length != 0);
  std::memcpy(even, odd, sizeof(odd));
}

void ZerosTables(uint32_t zeros[4][256], size_t byte_length) {
  uint32_t op[32];
  ZerosOperator(op, byte_length);
  for (uint32_t n = 0; n < 256; n++) {
    zeros[0][n] = Gf2MatrixTimes(op, n);
    zeros[1][n] = Gf2MatrixTimes(op, n << 8);
    zeros[2][n] = Gf2MatrixTimes(op, n << 16);
    zeros[3][n] = Gf2MatrixTimes(op, n << 24);
  }
}

inline uint32_t Shift(const uint32_t zeros[4][256], uint32_t crc) {
  return zeros[0][crc & 0xFF] ^ zeros[1][(crc >> 8) & 0xFF] ^ zeros[2][(crc >> 16) & 0xFF] ^
         zeros[3][crc >> 24];
}

__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(uint32_t crc, const uint8_t* data,
                                                           size_t length) {
  uint64_t crc0 = ~crc & 0xFFFFFFFFu;
  while (length > 0 && (reinterpret_cast<uintptr_t>(data) & 7) != 0) {
    crc0 = _mm_crc32_u8(static_cast<uint32_t>(crc0), *data++);
    length--;
  }
  auto load = [](const uint8_t* p) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    return word;
  };
  const size_t block_sizes[2] = {kLongBytes, kShortBytes};
  const uint32_t(*tables[2])[256] = {g_zeros_long, g_zeros_short};
  for (int b = 0; b < 2; b++) {
    const size_t block = block_sizes[b];
    while (length >= block * 3) {
      uint64_t crc1 = 0;
      uint64_t crc2 = 0;
      const uint8_t* end = data + block;
      do {
        crc0 = _mm_crc32_u64(crc0, load(data));
        crc1 = _mm_crc32_u64(crc1, load(data + block));
        crc2 = _mm_crc32_u64(crc2, load(data + 2 * block));
        data += 8;
      } while (data < end);
      crc0 = Shift(tables[b], static_cast<uint32_t>(crc0)) ^ crc1;
      crc0 = Shift(tables[b], static_cast<uint32_t>(crc0)) ^ crc2;
      data += 2 * block;
      length -= 3 * block;
    }
  }
  while (length >= 8) {
    crc0 = _mm_crc32_u64(crc0, load(data));
    data += 8;
    length -= 8;
  }
  while (length > 0) {
    crc0 = _mm_crc32_u8(static_cast<uint32_t>(crc0), *data++);
    length--;
  }
  return ~static_cast<uint32_t>(crc0);
}
#endif

bool g_crc_hardware = false;

}  // namespace


uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t length) {
#ifdef SHOAL_CRC32C_X86
  if (g_crc_hardware) return Crc32cHardware(crc, data, length);
#endif
  return SoftwareCrc(crc, data, length);
}

void Crc32cInit() {
  // Process-wide tables, computed once even when several Workers load the addon at once.
  static std::once_flag tables_once;
  std::call_once(tables_once, [] {
    InitSoftwareTables();
#ifdef SHOAL_CRC32C_X86
    ZerosTables(g_zeros_long, kLongBytes);
    ZerosTables(g_zeros_short, kShortBytes);
    g_crc_hardware = __builtin_cpu_supports("sse4.2");
#endif
  });
}

bool Crc32cHardware() { return g_crc_hardware; }

uint32_t Crc32cSoftware(uint32_t crc, const uint8_t* data, size_t length) { return SoftwareCrc(crc, data, length); }

}  // namespace shoal
