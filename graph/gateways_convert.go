package graph

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/lintel/lintel/graph/model"
	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/gateways"
)

// accessEvents converts reported events, naming the first bad ID.
func accessEvents(in []model.AccessEventInput) ([]gateways.AccessEvent, error) {
	out := make([]gateways.AccessEvent, len(in))
	var fs apperr.Fields
	for i, e := range in {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			fs.Add(fmt.Sprintf("events[%d].id", i), "not a UUID")
		}
		ev := gateways.AccessEvent{ID: id, ReaderID: e.ReaderID, Door: derefOr(e.Door.Value(), ""), At: e.At, Kind: string(e.Kind),
			CardID: derefOr(e.CardID.Value(), ""), Reason: derefOr(e.Reason.Value(), ""), Detail: derefOr(e.Detail.Value(), "")}
		if v := e.RecordID.Value(); v != nil {
			rid, err := uuid.Parse(*v)
			if err != nil {
				fs.Add(fmt.Sprintf("events[%d].recordId", i), "not a UUID")
			}
			ev.RecordID = &rid
		}
		if v := e.Decision.Value(); v != nil {
			d := string(*v)
			ev.Decision = &d
		}
		out[i] = ev
	}
	return out, fs.Err()
}

func readerStates(in []model.ReaderStatusInput) []gateways.ReaderState {
	out := make([]gateways.ReaderState, len(in))
	for i, r := range in {
		out[i] = gateways.ReaderState{ReaderID: r.ReaderID, Door: derefOr(r.Door.Value(), ""), Protocol: derefOr(r.Protocol.Value(), ""),
			Online: r.Online, LastSeenAt: r.LastSeenAt.Value()}
	}
	return out
}

func accessEventFilter(f *model.AccessEventFilter) (gateways.EventFilter, error) {
	var out gateways.EventFilter
	if f == nil {
		return out, nil
	}
	if v := f.GatewayID.Value(); v != nil {
		id, err := parseID("filter.gatewayId", *v)
		if err != nil {
			return out, err
		}
		out.GatewayID = &id
	}
	out.ReaderID = derefOr(f.ReaderID.Value(), "")
	if v := f.Decision.Value(); v != nil {
		out.Decision = string(*v)
	}
	out.From, out.To = f.From.Value(), f.To.Value()
	return out, nil
}
