// CRC-32C (Castagnoli): reflected, init and xorout 0xFFFFFFFF; crc32c("123456789") = 0xE3069283,
// and Crc32c(Crc32c(0, a), b) = Crc32c(0, a ++ b). Call Crc32cInit() once before the others.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shoal {

void Crc32cInit();
/** True when the SSE4.2 instruction is used. */
bool Crc32cHardware();
/** CRC of `length` bytes continuing from `crc`: hardware when available. */
uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t length);
/** The portable slicing-by-8 version, always (tests and benchmarks). */
uint32_t Crc32cSoftware(uint32_t crc, const uint8_t* data, size_t length);

}  // namespace shoal
