package barcodes

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"sync"
)

// bitImage is a black-and-white image kept as PNG's 1-bit grayscale rows
// (a 1 bit is white), each after its filter-type byte. Writing the PNG
// from it is a copy through deflate; image/png would go pixel by pixel for
// a bit depth below 8, which costs more than encoding the barcode.
type bitImage struct {
	w, h   int
	stride int    // bytes per row, filter byte included
	raw    []byte // h rows
}

func newBitImage(w, h int) *bitImage {
	stride := 1 + (w+7)/8
	img := &bitImage{w: w, h: h, stride: stride, raw: make([]byte, h*stride)}
	for y := range h {
		row := img.raw[y*stride : (y+1)*stride]
		row[0] = 0 // filter: none
		for i := 1; i < len(row); i++ {
			row[i] = 0xff
		}
	}
	return img
}

// row returns row y's pixel bytes.
func (img *bitImage) row(y int) []byte {
	return img.raw[y*img.stride+1 : (y+1)*img.stride]
}

var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

func (img *bitImage) encodePNG() ([]byte, error) {
	var idat bytes.Buffer
	zw := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(zw)
	zw.Reset(&idat)
	if _, err := zw.Write(img.raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}

	out := bytes.NewBuffer(make([]byte, 0, len(pngSignature)+3*12+13+idat.Len()))
	out.Write(pngSignature)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(img.w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(img.h))
	ihdr[8] = 1 // bit depth
	ihdr[9] = 0 // grayscale; compression, filter and interlace 0
	writeChunk(out, "IHDR", ihdr[:])
	writeChunk(out, "IDAT", idat.Bytes())
	writeChunk(out, "IEND", nil)
	return out.Bytes(), nil
}

func writeChunk(out *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	out.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	out.WriteString(typ)
	out.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	out.Write(n[:])
}
