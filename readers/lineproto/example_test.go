package lineproto_test

import (
	"fmt"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/lineproto"
)

func ExampleCardDecoder() {
	// A Wiegand-26 converter that prints "FFF-CCCCC" and CR LF.
	d, _ := lineproto.NewCardDecoder(lineproto.CardConfig{
		Line:   lineproto.LineConfig{Trim: true},
		Format: cardid.Wiegand26,
		OnReject: func(raw string, err error) {
			fmt.Printf("rejected %q: %v\n", raw, err)
		},
	})
	for _, c := range d.Feed([]byte("READY\r\n123-45678\r\n300-00001\r\n")) {
		fmt.Println("card", c.CardID)
	}
	// Output:
	// rejected "READY": card ID "READY": contains 'R' at position 1, expected facility:card, 26 raw bits or a packed decimal number
	// rejected "300-00001": card ID "300-00001": facility 300 out of range 0-255 for WIEGAND26
	// card 123:45678
}
