package em4100

import "fmt"

// Frame encodes a 40-bit tag number as the 14-byte frame a reader sends,
// uppercase like the RDM6300. Reader simulators and tests use it to produce
// exactly what the hardware would.
func Frame(tag uint64) []byte {
	var b [5]byte
	var sum byte
	for i := range b {
		b[i] = byte(tag >> (8 * (4 - i)))
		sum ^= b[i]
	}
	return fmt.Appendf(make([]byte, 0, FrameLen), "\x02%X%02X\x03", b[:], sum)
}
