package osdp

// crcTable holds CRC-16/AUG-CCITT (polynomial 0x1021, not reflected) for
// every byte value, so a frame costs one lookup per byte.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crcInit is the initial value OSDP specifies. It is what makes OSDP's CRC
// the AUG-CCITT variant rather than XMODEM (0) or CCITT-FALSE (0xFFFF);
// picking the wrong one makes every reader NAK or ignore us.
const crcInit = 0x1D0F

// CRC16 returns the OSDP CRC of p: CRC-16/AUG-CCITT, whose check value for
// "123456789" is 0xE5CC. Frames carry it low byte first.
func CRC16(p []byte) uint16 {
	c := uint16(crcInit)
	for _, b := range p {
		c = c<<8 ^ crcTable[byte(c>>8)^b]
	}
	return c
}

// Checksum returns the 8-bit checksum of p used by frames in checksum mode:
// the two's complement of the byte sum, so that all bytes of an intact
// frame, checksum included, add up to zero.
func Checksum(p []byte) byte {
	var sum byte
	for _, b := range p {
		sum += b
	}
	return -sum
}
