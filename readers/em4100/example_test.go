package em4100_test

import (
	"fmt"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/em4100"
)

func ExampleDecoder() {
	d, _ := em4100.NewDecoder(em4100.Config{Format: cardid.Wiegand26})
	// Line noise, then the frame a fob printed "0010109031 154,16487"
	// produces, arriving in two pieces; then the same frame again, as the
	// reader repeats it while the fob is held.
	d.Feed([]byte("\x00\x021E009A40"))
	for _, r := range d.Feed([]byte("67A3\x03\x021E009A4067A3\x03")) {
		fmt.Printf("tag %010X card %s\n", r.Tag, r.CardID)
	}
	fmt.Printf("%+v\n", d.Stats())
	// Output:
	// tag 1E009A4067 card 154:16487
	// {Frames:2 Reads:1 Repeats:1 BadChecksum:0 BadHex:0 Truncated:0 Overlong:0 Noise:1}
}
