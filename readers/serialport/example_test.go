package serialport_test

import (
	"context"
	"log"
	"os/signal"
	"syscall"

	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/readers/em4100"
	"github.com/lintel/lintel/readers/serialport"
)

// A gateway keeps an RDM6300 reader open across unplugging. A fresh decoder
// per session makes sure half a frame from before the unplug is never glued
// to what comes after.
func ExampleSupervisor() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	sup := &serialport.Supervisor{
		Config:  serialport.Config{Path: "/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0", Baud: 9600},
		OnEvent: func(e serialport.Event) { log.Printf("reader %s: %s %v", e.Path, e.State, e.Err) },
	}
	err := sup.Run(ctx, func(ctx context.Context, p serialport.Port) error {
		d, err := em4100.NewDecoder(em4100.Config{Format: cardid.Wiegand26})
		if err != nil {
			return err
		}
		return serialport.Pump(ctx, p, func(b []byte) {
			for _, r := range d.Feed(b) {
				log.Printf("card %s", r.CardID)
			}
		})
	})
	log.Print(err)
}
