package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	values := []int64{0, 1, 127, 128, 129, 255, 256, 1000, 4095, 4096, 123_456, 1 << 30, 1<<40 + 7, 1 << 46}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		values = append(values, r.Int64N(1<<40))
	}
	for _, v := range values {
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("bucketOf(%d) = %d covering [%d, %d]; want the value inside", v, i, lo, hi)
		}
		if v >= subCount && float64(hi-lo+1)/float64(lo) > 1.0/64+1e-12 {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/64 of its values", i, lo, hi)
		}
	}
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		if lo, _ := bucketRange(i); lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d; want %d (buckets must tile the range)", i, lo, prevHi+1)
		}
	}
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestQuantile(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name   string
		values func() []time.Duration
	}{
		{"uniform 1..10000µs", func() []time.Duration {
			var v []time.Duration
			for i := 1; i <= 10_000; i++ {
				v = append(v, time.Duration(i)*time.Microsecond)
			}
			return v
		}},
		{"long tail", func() []time.Duration {
			var v []time.Duration
			for range 50_000 {
				v = append(v, time.Duration(r.ExpFloat64()*float64(300*time.Microsecond))+50*time.Microsecond)
			}
			return v
		}},
		{"two values", func() []time.Duration { return []time.Duration{time.Millisecond, 40 * time.Millisecond} }},
		{"tiny, exact", func() []time.Duration { return []time.Duration{3, 5, 7, 9, 11} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := tt.values()
			var h histogram
			for _, v := range values {
				h.record(v)
			}
			slices.Sort(values)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				got, want := h.quantile(q), exactQuantile(values, q)
				if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
					t.Errorf("quantile(%v) = %v; want %v ±1%% (off by %.2f%%)", q, got, want, 100*rel)
				}
			}
			if got, want := h.quantile(0), values[0]; got != want {
				t.Errorf("quantile(0) = %v; want the minimum %v exactly", got, want)
			}
			if got, want := h.quantile(1), values[len(values)-1]; got != want {
				t.Errorf("quantile(1) = %v; want the maximum %v exactly", got, want)
			}
		})
	}
}

func TestQuantileEmptyAndMerge(t *testing.T) {
	var empty histogram
	if got := empty.quantile(0.99); got != 0 {
		t.Errorf("empty quantile(0.99) = %v; want 0", got)
	}
	var all, a, b histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i*i) * time.Microsecond
		all.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.merge(&b)
	a.merge(&empty)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got, want := a.quantile(q), all.quantile(q); got != want {
			t.Errorf("merged quantile(%v) = %v; want %v as if recorded in one", q, got, want)
		}
	}
	if a.n != all.n || a.mean() != all.mean() {
		t.Errorf("merged n, mean = %d, %v; want %d, %v", a.n, a.mean(), all.n, all.mean())
	}
}

func BenchmarkRecord(b *testing.B) {
	var h histogram
	for i := range b.N {
		h.record(time.Duration(i%5000) * time.Microsecond)
	}
}
