package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records latencies in log-linear buckets (like HDR Histogram): values below 128 ns are
// exact, larger ones keep their top 7 significant bits, so any value is known to within 1/64
// (≈1.6 %; the midpoint reported is within ≈0.8 %). It has a fixed size, never allocates while
// recording, and each load worker owns one, so the hot loop takes no lock.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max int64
	sum      float64
}

const (
	subBits     = 7
	subCount    = 1 << subBits // values below this are their own bucket
	halfCount   = subCount / 2 // buckets per power of two above it
	maxShift    = 40           // 2^(40+7) ns ≈ 39 hours: far past any request timeout
	histBuckets = subCount + maxShift*halfCount
)

// bucketOf maps a non-negative value to its bucket.
func bucketOf(v int64) int {
	if v < subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // ≥ 1
	if shift > maxShift {
		return histBuckets - 1
	}
	mantissa := int(v >> shift) // in [64, 128)
	return subCount + (shift-1)*halfCount + (mantissa - halfCount)
}

// bucketRange is the smallest and largest value that land in bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < subCount {
		return int64(i), int64(i)
	}
	shift := (i-subCount)/halfCount + 1
	mantissa := int64(halfCount + (i-subCount)%halfCount)
	return mantissa << shift, (mantissa+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
	h.counts[bucketOf(v)]++
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// quantile returns the value at quantile q (0..1) by the nearest-rank rule: the smallest recorded
// value with at least ceil(q·n) values at or below it, as the midpoint of its bucket (the first and
// last ranks are the recorded min and max, exactly). 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return time.Duration(h.max)
	}
	if rank == 1 {
		return time.Duration(h.min)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
