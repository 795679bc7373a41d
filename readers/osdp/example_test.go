package osdp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/osdp"
)

func ExampleFrame_Encode() {
	pkt, err := osdp.NewFrame(0, 0, osdp.Poll{}).Encode()
	if err != nil {
		panic(err)
	}
	fmt.Printf("% X\n", pkt)
	// Output: 53 00 08 00 04 60 EB AA
}

func ExampleCardFromRaw() {
	// A reader at address 1 reporting an H10301 card, facility 123, card 4567.
	f, err := osdp.ParseFrame([]byte{0x53, 0x81, 0x10, 0x00, 0x06, 0x50,
		0x00, 0x01, 0x1A, 0x00, 0xBD, 0x88, 0xEB, 0x80, 0x61, 0x91})
	if err != nil {
		panic(err)
	}
	m, err := osdp.ParseReply(f)
	if err != nil {
		panic(err)
	}
	raw := m.(osdp.Raw)
	id, err := osdp.CardFromRaw(raw, cardid.Wiegand26)
	fmt.Println(raw, id, err)
	// Output: 10111101100010001110101110 123:4567 <nil>
}

// openPort stands for opening the serial adapter, e.g. with
// github.com/tarm/serial: Name "/dev/ttyUSB0", Baud 9600, ReadTimeout 100 ms.
var openPort = func() (io.ReadWriteCloser, error) { return nil, io.ErrUnexpectedEOF }

// allowed stands for the access decision.
func allowed(cardID string) bool { return cardID == "123:4567" }

// A gateway owns the port: it reopens it whenever Run returns, while the
// Bus keeps its readers' state and queued commands across runs.
func ExampleBus() {
	ctx := context.Background()
	bus, err := osdp.New(osdp.Config{Addrs: []byte{1, 2}})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for ev := range bus.Events() {
			switch ev := ev.(type) {
			case osdp.CardRead:
				id, err := osdp.CardFromRaw(ev.Raw, cardid.Wiegand26)
				switch {
				case err != nil:
					log.Printf("reader %d: %v", ev.Addr, err)
				case allowed(id):
					err = bus.Grant(ev.Addr, 5*time.Second)
				default:
					err = bus.Deny(ev.Addr)
				}
				if err != nil {
					log.Printf("reader %d: %v", ev.Addr, err)
				}
			case osdp.StatusChange:
				log.Printf("reader %d online: %v", ev.Addr, ev.Online)
			}
		}
	}()
	for ctx.Err() == nil {
		port, err := openPort()
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		err = bus.Run(ctx, port)
		log.Printf("OSDP line: %v", err)
		port.Close()
	}
}
