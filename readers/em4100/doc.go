// Package em4100 decodes the serial output of EM4100 125 kHz proximity
// readers such as the RDM6300 module.
//
// Such a reader sends one 14-byte frame per tag read, at 9600 baud:
//
//	0x02  V V  I I I I I I I I  C C  0x03
//	STX   version/customer byte, 4-byte tag ID, checksum, ETX
//
// Every field is ASCII hex, two characters per byte (the RDM6300 uses
// uppercase; lowercase is accepted too); the checksum is the XOR of the five
// data bytes. STX and ETX never occur inside a frame, which is what lets the
// decoder find the next frame after line noise.
//
// While a tag is held in the field the reader repeats its frame every
// ~100 ms. A door must see one presentation, not ten a second, so the
// decoder reports a tag once and again only after it has been out of the
// field for [Config.HoldGap].
//
// The 32-bit tag ID (without the customer byte) is the number printed on EM
// cards and fobs, and becomes the card ID through [cardid.FromNumber]. For
// WIEGAND26 only its low 24 bits are used: that is what an EM reader with
// Wiegand-26 output sends, and what the card's "fff,ccccc" print shows.
package em4100
