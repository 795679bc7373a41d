// Package cardid normalises card numbers to one canonical stored form per
// card-ID format.
//
// The same physical card must get the same stored string however its number
// arrives: typed by an operator, read from a CSV file, or decoded from a door
// reader (Wiegand bit frames, hex UIDs, plain numbers). [Parse] reads text,
// [FromWiegandBits] reads raw reader bits, [FromNumber] reads a reader's
// unsigned number, and all three return the same canonical form for the same
// card. [Explain] also describes how the input was read, for the import
// preview. Errors are *[Error] values whose Reason names exactly what is
// wrong. Character positions in reasons count characters (not bytes) in the
// input as given, starting at 1.
//
// Every format accepts surrounding whitespace (Unicode spaces, so also a
// no-break space from a spreadsheet). An empty or all-space input is
// rejected.
//
// # DECIMAL
//
// Input: ASCII digits 0-9 only. No signs, no grouping spaces, dashes or dots.
// Canonical: the digits with leading zeros removed ("0" stays "0"), at most
// 20 digits (not counting leading zeros), so every uint64 fits. The value is
// kept as text: a 20-digit number above the uint64 maximum is still accepted.
//
//	"  00123 " -> "123"    "000" -> "0"    "12 345" -> error
//
// # HEX
//
// Input: hex digits in either case, with an optional "0x" or "0X" prefix.
// Bytes may be separated by ':', '-' or ' ' (one kind per input), and each
// group between separators must hold whole bytes (an even number of digits),
// e.g. "04:a1:b2:c3" or "04A1 B2C3". At most 32 hex digits (16 bytes, enough
// for 4-, 7- and 10-byte NFC UIDs) are accepted, counting leading zeros.
// Canonical: uppercase hex digits, no prefix or separators, padded on the
// left to an even number of digits, with leading zero bytes removed; a value
// of zero is "00".
//
//	"0004A1" -> "04A1"    "abc" -> "0ABC"    "0x04:a1:b2:c3" -> "04A1B2C3"
//
// # HEX_REVERSED
//
// For readers that report UID bytes little-endian. The input is read as for
// HEX (all bytes kept, padded on the left to whole bytes), the byte order is
// reversed, and the result is canonicalised as HEX. The canonical form is
// therefore a HEX canonical form: a card stored from a HEX_REVERSED reader
// matches the same card typed as HEX, and re-parsing it must be done as HEX
// (parsing it again as HEX_REVERSED would reverse it back).
//
//	"C3B2A104" -> "04A1B2C3"    "abc" -> "BC0A"    "04A1B200" -> "B2A104"
//
// # WIEGAND26, WIEGAND34, WIEGAND37
//
// Canonical: "<facility>:<card>" in decimal without leading zeros, e.g.
// "123:45678". The canonical form does not name the format: "1:2" is a valid
// card in all three, so store the format alongside it.
//
// Accepted inputs:
//   - "FC:CN", "FC-CN" or "FC/CN": facility and card number in decimal,
//     optionally with spaces around the separator ("123 / 45678").
//   - exactly N characters '0'/'1' (N = 26, 34 or 37): the raw frame, bit 0
//     first (the first bit received); both parity bits are checked. A
//     string of 20 or more '0'/'1' characters that is not exactly N long is
//     rejected as a raw frame of the wrong length.
//   - any other run of decimal digits: the packed value
//     facility<<cardBits | card, without parity bits (what many readers and
//     older systems print as the "card number").
//
// Facility and card are range-checked for the format, e.g.
// "facility 300 out of range 0-255 for WIEGAND26". Commas are not accepted
// as a separator because they clash with CSV.
//
// Field layout and parity, with bit 0 the first bit transmitted (most
// significant first), as specified by HID:
//
//	format     HID     bits  facility     card          even parity          odd parity
//	WIEGAND26  H10301  26    1-8  (8)     9-24  (16)    bit 0 over 1-12      bit 25 over 13-24
//	WIEGAND34  H10306  34    1-16 (16)    17-32 (16)    bit 0 over 1-16      bit 33 over 17-32
//	WIEGAND37  H10304  37    1-16 (16)    17-35 (19)    bit 0 over 1-18      bit 36 over 18-35
//
// "Even parity bit 0 over 1-12" means bits 0-12 together hold an even number
// of ones; "odd parity bit 25 over 13-24" means bits 13-25 hold an odd number
// of ones. In H10304 the two parity ranges overlap: bit 18 (the second card
// bit) is covered by both.
//
// # FromNumber
//
// [FromNumber] agrees with [Parse] of the number written out in the format:
// DECIMAL gives base 10, HEX gives the number's hex digits, HEX_REVERSED
// gives the number's hex digits byte-reversed (a little-endian reader's
// number), and Wiegand formats read the number as the packed value. A number
// carries no width, so a HEX_REVERSED number loses UID bytes that are zero at
// the end of the UID (they are the number's leading zeros); use the reader's
// hex text when it is available.
package cardid
