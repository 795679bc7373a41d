package eventqueue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
)

const ackFileName = "acked"

// The acknowledged position is kept in two 32-byte slots written in turn,
//
//	"ACK1" uint64(generation) uint64(segment) uint64(offset) uint32(CRC-32C)
//
// so that a write torn by a power cut spoils only the slot being written;
// the slot with the highest valid generation counts.
const (
	ackSlotLen = 32
	ackMagic   = "ACK1"
)

type ackFile struct {
	f   *os.File
	gen uint64
}

// openAckFile opens the acknowledged position, or starts at the beginning
// when there is none. Should both slots be unreadable, everything still on
// disk is delivered again: the server keeps each event ID once.
func openAckFile(path string) (*ackFile, pos, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, pos{}, err
	}
	var buf [2 * ackSlotLen]byte
	n, err := f.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		_ = f.Close()
		return nil, pos{}, err
	}
	a := &ackFile{f: f}
	var at pos
	for i := 0; (i+1)*ackSlotLen <= n; i++ {
		if gen, p, ok := readAckSlot(buf[i*ackSlotLen : (i+1)*ackSlotLen]); ok && gen > a.gen {
			a.gen, at = gen, p
		}
	}
	return a, at, nil
}

func readAckSlot(b []byte) (gen uint64, p pos, ok bool) {
	if string(b[:4]) != ackMagic || crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:]) {
		return 0, pos{}, false
	}
	off := binary.LittleEndian.Uint64(b[20:])
	if off > 1<<62 {
		return 0, pos{}, false
	}
	return binary.LittleEndian.Uint64(b[4:]), pos{seg: binary.LittleEndian.Uint64(b[12:]), off: int64(off)}, true
}

// write makes p the acknowledged position, durably.
func (a *ackFile) write(p pos) error {
	gen := a.gen + 1
	b := make([]byte, 0, ackSlotLen)
	b = append(b, ackMagic...)
	b = binary.LittleEndian.AppendUint64(b, gen)
	b = binary.LittleEndian.AppendUint64(b, p.seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(p.off))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if _, err := a.f.WriteAt(b, int64(gen%2)*ackSlotLen); err != nil {
		return err
	}
	if err := a.f.Sync(); err != nil {
		return err
	}
	a.gen = gen
	return nil
}
