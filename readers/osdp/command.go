package osdp

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Message is the code and data a Frame carries: a command from the CP or a
// reply from a PD.
type Message interface {
	Code() byte
	AppendData(dst []byte) []byte
}

// Command codes (CP to PD) this package sends.
const (
	CmdPoll = 0x60 // osdp_POLL
	CmdID   = 0x61 // osdp_ID
	CmdCap  = 0x62 // osdp_CAP
	CmdOut  = 0x68 // osdp_OUT
	CmdLED  = 0x69 // osdp_LED
	CmdBuz  = 0x6A // osdp_BUZ
)

// Tick is the unit of every OSDP LED, buzzer and output time.
const Tick = 100 * time.Millisecond

// ticks converts d to whole ticks, rounding up so that a door is never held
// open for less than asked, and clamps it to 1..limit.
func ticks(d time.Duration, limit uint64) uint64 {
	if d <= 0 {
		return 1
	}
	return min(max(uint64((d+Tick-1)/Tick), 1), limit)
}

// Poll is osdp_POLL: "anything to report?". A PD answers with a card read
// or keypad entry if it has one, else with osdp_ACK.
type Poll struct{}

// Code returns CmdPoll.
func (Poll) Code() byte { return CmdPoll }

// AppendData appends nothing: osdp_POLL has no data.
func (Poll) AppendData(dst []byte) []byte { return dst }

// IDRequest is osdp_ID asking for the standard PD ID report (osdp_PDID).
type IDRequest struct{}

// Code returns CmdID.
func (IDRequest) Code() byte { return CmdID }

// AppendData appends the report type 0x00, the standard PD ID block.
func (IDRequest) AppendData(dst []byte) []byte { return append(dst, 0x00) }

// CapRequest is osdp_CAP asking for the PD's capabilities (osdp_PDCAP).
type CapRequest struct{}

// Code returns CmdCap.
func (CapRequest) Code() byte { return CmdCap }

// AppendData appends the reply type 0x00, the only one defined.
func (CapRequest) AppendData(dst []byte) []byte { return append(dst, 0x00) }

// Color is an LED colour as OSDP numbers them.
type Color byte

// The OSDP LED colours.
const (
	Black Color = iota
	Red
	Green
	Amber
	Blue
	Magenta
	Cyan
	White
)

// LED control codes.
const (
	LEDTempNOP    = 0x00 // leave the temporary state alone
	LEDTempCancel = 0x01 // end a temporary state now, show the permanent one
	LEDTempSet    = 0x02 // show the temporary state until its timer ends
	LEDPermNOP    = 0x00 // leave the permanent state alone
	LEDPermSet    = 0x01 // set the permanent state
)

// LED is one osdp_LED record: a temporary state that shows for a while and
// falls back to the permanent one by itself, and the permanent state. Times
// are in ticks of 100 ms; an LED that is on with off time 0 is steady.
type LED struct {
	Reader, Number byte

	TempControl               byte // LEDTemp*
	TempOn, TempOff           byte // ticks
	TempOnColor, TempOffColor Color
	TempTimer                 uint16 // ticks until the permanent state returns

	PermControl               byte // LEDPerm*
	PermOn, PermOff           byte // ticks
	PermOnColor, PermOffColor Color
}

const ledRecordLen = 14

// Code returns CmdLED.
func (LED) Code() byte { return CmdLED }

// AppendData appends the 14-byte record.
func (l LED) AppendData(dst []byte) []byte {
	dst = append(dst, l.Reader, l.Number,
		l.TempControl, l.TempOn, l.TempOff, byte(l.TempOnColor), byte(l.TempOffColor))
	dst = binary.LittleEndian.AppendUint16(dst, l.TempTimer)
	return append(dst, l.PermControl, l.PermOn, l.PermOff, byte(l.PermOnColor), byte(l.PermOffColor))
}

// LEDGrant shows steady green on the first LED of reader 0 for d, then lets
// it fall back to its permanent state. The permanent state is left alone: it
// is the site's idle colour, set in the reader's own configuration.
func LEDGrant(d time.Duration) LED {
	return LED{
		TempControl: LEDTempSet, TempOn: 10, TempOff: 0, TempOnColor: Green, TempOffColor: Green,
		TempTimer: uint16(ticks(d, 0xFFFF)),
	}
}

// LEDDeny flashes the first LED of reader 0 red, 200 ms on and 200 ms off,
// for 1.2 s: in step with the three beeps of BuzzerDeny.
func LEDDeny() LED {
	return LED{
		TempControl: LEDTempSet, TempOn: 2, TempOff: 2, TempOnColor: Red, TempOffColor: Black,
		TempTimer: 12,
	}
}

// ParseLED reads the records of an osdp_LED command.
func ParseLED(data []byte) ([]LED, error) {
	if len(data) == 0 || len(data)%ledRecordLen != 0 {
		return nil, fmt.Errorf("osdp: osdp_LED data is %d bytes, want a multiple of %d", len(data), ledRecordLen)
	}
	var leds []LED
	for r := data; len(r) > 0; r = r[ledRecordLen:] {
		leds = append(leds, LED{
			Reader: r[0], Number: r[1],
			TempControl: r[2], TempOn: r[3], TempOff: r[4], TempOnColor: Color(r[5]), TempOffColor: Color(r[6]),
			TempTimer:   binary.LittleEndian.Uint16(r[7:9]),
			PermControl: r[9], PermOn: r[10], PermOff: r[11], PermOnColor: Color(r[12]), PermOffColor: Color(r[13]),
		})
	}
	return leds, nil
}

// Buzzer tones.
const (
	ToneOff     = 0x01
	ToneDefault = 0x02
)

// Buzzer is osdp_BUZ: Count beeps of On ticks with Off ticks between them
// (Count 0 beeps until told otherwise).
type Buzzer struct {
	Reader  byte
	Tone    byte // ToneOff or ToneDefault
	On, Off byte // ticks
	Count   byte
}

const buzzerLen = 5

// Code returns CmdBuz.
func (Buzzer) Code() byte { return CmdBuz }

// AppendData appends the 5-byte record.
func (b Buzzer) AppendData(dst []byte) []byte {
	return append(dst, b.Reader, b.Tone, b.On, b.Off, b.Count)
}

// BuzzerGrant is one short beep: the door is open.
func BuzzerGrant() Buzzer {
	return Buzzer{Tone: ToneDefault, On: 2, Off: 0, Count: 1}
}

// BuzzerDeny is three short beeps: distinct from a grant without looking.
func BuzzerDeny() Buzzer {
	return Buzzer{Tone: ToneDefault, On: 2, Off: 2, Count: 3}
}

// ParseBuzzer reads an osdp_BUZ command.
func ParseBuzzer(data []byte) (Buzzer, error) {
	if len(data) != buzzerLen {
		return Buzzer{}, fmt.Errorf("osdp: osdp_BUZ data is %d bytes, want %d", len(data), buzzerLen)
	}
	return Buzzer{Reader: data[0], Tone: data[1], On: data[2], Off: data[3], Count: data[4]}, nil
}

// Output control codes.
const (
	OutNOP               = 0x00
	OutPermOffAbort      = 0x01 // permanent off, abort a timed operation
	OutPermOnAbort       = 0x02 // permanent on, abort a timed operation
	OutPermOffAfter      = 0x03 // permanent off once a timed operation completes
	OutPermOnAfter       = 0x04 // permanent on once a timed operation completes
	OutTempOnThenResume  = 0x05 // on for the timer, then back to the permanent state
	OutTempOffThenResume = 0x06 // off for the timer, then back to the permanent state
)

// Output is one osdp_OUT record: a control code for one output (relay) and,
// for the timed codes, the timer in ticks.
type Output struct {
	Number  byte
	Control byte // Out*
	Timer   uint16
}

const outputRecordLen = 4

// Code returns CmdOut.
func (Output) Code() byte { return CmdOut }

// AppendData appends the 4-byte record.
func (o Output) AppendData(dst []byte) []byte {
	dst = append(dst, o.Number, o.Control)
	return binary.LittleEndian.AppendUint16(dst, o.Timer)
}

// maxPulse is the longest timed output OSDP can express.
const maxPulse = 0xFFFF * Tick

// OutputPulse switches output number on for d, rounded up to whole ticks,
// then back to its permanent state. The PD times the pulse itself, so a
// door strike released this way locks again even if the CP or the line
// dies meanwhile; this package never sets an output permanently on.
func OutputPulse(number byte, d time.Duration) (Output, error) {
	if d <= 0 || d > maxPulse {
		return Output{}, fmt.Errorf("osdp: output pulse %v out of range %v-%v", d, Tick, maxPulse)
	}
	return Output{Number: number, Control: OutTempOnThenResume, Timer: uint16(ticks(d, 0xFFFF))}, nil
}

// ParseOutput reads the records of an osdp_OUT command.
func ParseOutput(data []byte) ([]Output, error) {
	if len(data) == 0 || len(data)%outputRecordLen != 0 {
		return nil, fmt.Errorf("osdp: osdp_OUT data is %d bytes, want a multiple of %d", len(data), outputRecordLen)
	}
	var outs []Output
	for r := data; len(r) > 0; r = r[outputRecordLen:] {
		outs = append(outs, Output{Number: r[0], Control: r[1], Timer: binary.LittleEndian.Uint16(r[2:4])})
	}
	return outs, nil
}
