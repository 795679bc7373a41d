package gateway_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/lintel/lintel/readers/gateway"
)

// A gateway for two OSDP readers on one RS-485 adapter and an RDM6300 on
// another, run until SIGTERM. The configuration would normally be a file
// read with LoadConfig.
func ExampleRun() {
	cfg, err := gateway.ParseConfig([]byte(`
server: https://lintel.example.com
token_file: /etc/lintel/gateway.token
site: HQ
data_dir: /var/lib/lintel-gateway
metrics_addr: 127.0.0.1:9108
rate_limit: {denials: 5, window: 10s, lockout: 30s}
readers:
  - {id: front, port: /dev/serial/by-id/usb-FTDI_FT232R-if00-port0, protocol: osdp, address: 1, door: Front door, card_format: WIEGAND26}
  - {id: side, port: /dev/serial/by-id/usb-FTDI_FT232R-if00-port0, protocol: osdp, address: 2, door: Side door, card_format: WIEGAND26}
  - {id: garage, port: /dev/serial/by-id/usb-1a86_USB_Serial-if00-port0, protocol: em4100, door: Garage}
`), "/etc/lintel")
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err != nil {
		log.Error("bad configuration", "err", err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := gateway.Run(ctx, cfg, log); err != nil {
		log.Error("gateway failed", "err", err)
	}
}
