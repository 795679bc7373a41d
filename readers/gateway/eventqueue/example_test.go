package eventqueue_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/lintel/lintel/readers/gateway/eventqueue"
)

// Doors append; the shipper peeks a batch, sends it, and acknowledges it.
func Example() {
	dir, _ := os.MkdirTemp("", "events")
	defer os.RemoveAll(dir)
	q, err := eventqueue.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	_ = q.Append(eventqueue.Event{ReaderID: "front-1", At: at, Kind: "CARD", CardID: "123:45678", Decision: "GRANTED"})
	_ = q.Append(eventqueue.Event{ReaderID: "front-1", At: at.Add(time.Second), Kind: "CARD", CardID: "9", Decision: "DENIED", Reason: "UNKNOWN_CARD"})

	batch, _ := q.Peek(100)
	for _, ev := range batch {
		// reportAccessEvents(batch) in real life.
		line := ev.CardID + " " + ev.Decision
		if ev.Reason != "" {
			line += " (" + ev.Reason + ")"
		}
		fmt.Println(line)
	}
	_ = q.Ack(len(batch))
	fmt.Println(q.Len(), "left")
	// Output:
	// 123:45678 GRANTED
	// 9 DENIED (UNKNOWN_CARD)
	// 0 left
}
