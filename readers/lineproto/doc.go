// Package lineproto decodes readers that send one ASCII line per read:
// Wiegand-to-serial converters and simple card readers that print a card
// number per line, and QR scanners in serial mode that print the decoded
// text.
//
// These devices agree on little beyond "a line": the ending may be CR, LF or
// CR LF (and changes with a DIP switch), lines may carry an STX, an "ID:"
// prefix or a checksum suffix, and the number may be decimal, hex or
// "facility:card". [LineDecoder] splits and cleans lines according to a
// [LineConfig]; [CardDecoder] turns them into canonical card IDs with
// [ParseCard]; [TextDecoder] passes QR text through unchanged (it is verified
// elsewhere) after checking its length and characters.
//
// A line that cannot be used is dropped and counted, never guessed at, and
// decoding carries on with the next line: on a door, a wrong card number is
// worse than none. For the same reason a partly received line is dropped
// rather than decoded when the line goes quiet ([LineDecoder.Flush]): the
// first digits of a card number are often another valid card number.
package lineproto
