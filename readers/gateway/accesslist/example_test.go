package accesslist_test

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/readers/gateway/accesslist"
)

// A gateway fills its list from the server's feed and decides at the door
// without asking anyone.
func ExampleList_DecideCard() {
	l := accesslist.New()
	alice := accesslist.Entry{RecordID: uuid.New(), TemplateID: uuid.New(), CardID: "123:45678", Status: accesslist.StatusActive}
	l.ReplaceAll([]accesslist.Entry{alice}, "d:41")

	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	fmt.Println(l.DecideCard("123:45678", now).Granted)

	// The record is suspended on the server; the next delta page says so.
	alice.Status = accesslist.StatusSuspended
	l.Apply([]accesslist.Change{{Entry: alice}}, "d:42")
	fmt.Println(l.DecideCard("123:45678", now).Reason)
	fmt.Println(l.DecideCard("999:1", now).Reason)
	// Output:
	// true
	// SUSPENDED
	// UNKNOWN_CARD
}
