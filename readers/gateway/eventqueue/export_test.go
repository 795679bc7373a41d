package eventqueue

// OpenWithSegmentSize opens a queue that starts a new segment past
// segBytes, so that tests see many segments.
func OpenWithSegmentSize(dir string, segBytes int64) (*Queue, error) { return open(dir, segBytes) }
