package expiring

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestExpiry(t *testing.T) {
	c := New[string, int](10, Evict)
	c.Add("a", 1, t0.Add(time.Minute), t0)
	c.Add("forever", 2, time.Time{}, t0)
	for _, tc := range []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"a", time.Minute - time.Nanosecond, true},
		{"a", time.Minute, false}, // until is the first instant it is gone
		{"forever", 100 * 365 * 24 * time.Hour, true},
		{"missing", 0, false},
	} {
		if _, ok := c.Peek(tc.key, t0.Add(tc.at)); ok != tc.want {
			t.Errorf("Peek(%q) at +%v = %v; want %v", tc.key, tc.at, ok, tc.want)
		}
	}
	if n := c.Len(); n != 1 {
		t.Errorf("Len() = %d after a Peek found a expired; want it removed (1 left)", n)
	}
	c.Add("a", 1, t0.Add(time.Minute), t0)
	if v, ok := c.Get("a", t0); !ok || v != 1 {
		t.Errorf("Get(a) = %v, %v; want 1, true", v, ok)
	}
	if _, ok := c.Get("a", t0.Add(time.Minute)); ok {
		t.Error("Get(a) after its time: want a miss")
	}
	if n := c.Len(); n != 1 {
		t.Errorf("Len() = %d after Get of an expired entry; want it removed (1 left)", n)
	}
}

func TestEvictLeastRecentlyUsed(t *testing.T) {
	c := New[string, int](2, Evict)
	c.Add("a", 1, time.Time{}, t0)
	c.Add("b", 2, time.Time{}, t0)
	c.Get("a", t0) // a is now the most recently used
	if !c.Add("c", 3, time.Time{}, t0) {
		t.Fatal("Add() to a full Evict cache = false; want true")
	}
	if _, ok := c.Peek("b", t0); ok {
		t.Error("b survived; want the least recently used evicted")
	}
	if _, ok := c.Peek("a", t0); !ok {
		t.Error("a was evicted; want it kept (used last)")
	}

	// Peek does not count as a use: entries leave in the order they were added.
	c = New[string, int](2, Evict)
	c.Add("a", 1, time.Time{}, t0)
	c.Add("b", 2, time.Time{}, t0)
	c.Peek("a", t0)
	c.Add("c", 3, time.Time{}, t0)
	if _, ok := c.Peek("a", t0); ok {
		t.Error("a survived after only being peeked at; want it evicted as the oldest")
	}

	// Add of an existing key replaces it, refreshes its time and makes it the most recent.
	c = New[string, int](2, Evict)
	c.Add("a", 1, t0.Add(time.Second), t0)
	c.Add("b", 2, time.Time{}, t0)
	c.Add("a", 10, t0.Add(time.Hour), t0)
	c.Add("c", 3, time.Time{}, t0)
	if v, ok := c.Peek("a", t0.Add(time.Minute)); !ok || v != 10 {
		t.Errorf("Peek(a) = %v, %v; want the replacement 10, alive past the old time", v, ok)
	}
}

func TestAddNew(t *testing.T) {
	c := New[string, struct{}](10, Evict)
	if !c.AddNew("state", struct{}{}, t0.Add(time.Minute), t0) {
		t.Fatal("AddNew() of a new key = false")
	}
	if c.AddNew("state", struct{}{}, t0.Add(time.Minute), t0.Add(time.Second)) {
		t.Error("AddNew() of a live key = true; want the replay refused")
	}
	if !c.AddNew("state", struct{}{}, t0.Add(2*time.Minute), t0.Add(time.Minute)) {
		t.Error("AddNew() of an expired key = false; want it taken as new")
	}
}

func TestRefuseWhenFull(t *testing.T) {
	c := New[string, int](2, Refuse)
	c.Add("a", 1, t0.Add(time.Minute), t0)
	c.Add("b", 2, t0.Add(time.Hour), t0)
	if c.Add("c", 3, t0.Add(time.Hour), t0) || c.AddNew("c", 3, t0.Add(time.Hour), t0) {
		t.Fatal("Add() to a Refuse cache full of live entries = true; want refused")
	}
	if _, ok := c.Peek("a", t0); !ok {
		t.Fatal("a live entry was forgotten")
	}
	if !c.Add("b", 20, t0.Add(time.Hour), t0) {
		t.Error("Add() of a key already held = false; want an update allowed")
	}
	// Once a has expired, it makes room.
	if !c.AddNew("c", 3, t0.Add(time.Hour), t0.Add(time.Minute)) {
		t.Error("AddNew() after an entry expired = false; want the expired one pruned")
	}
	if n := c.Len(); n != 2 {
		t.Errorf("Len() = %d; want 2", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	for _, w := range []WhenFull{Evict, Refuse} {
		c := New[int, int](64, w)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 1000 {
					now := t0.Add(time.Duration(i) * time.Millisecond)
					k := (g*1000 + i) % 100
					c.Add(k, i, now.Add(50*time.Millisecond), now)
					c.AddNew(k+1, i, now.Add(50*time.Millisecond), now)
					c.Get(k, now)
					c.Peek(k+2, now)
					if i%100 == 0 {
						c.Remove(k)
					}
				}
			})
		}
		wg.Wait()
		if n := c.Len(); n > 64 {
			t.Errorf("Len() = %d; want at most the size, 64", n)
		}
	}
}

func TestNewRefusesNonPositiveSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(0) did not panic")
		}
	}()
	New[string, int](0, Evict)
}

func BenchmarkGetHit(b *testing.B) {
	c := New[string, int](4096, Evict)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("key-", i)
		c.Add(keys[i], i, t0.Add(time.Hour), t0)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(keys[i%len(keys)], t0); !ok {
			b.Fatal("miss")
		}
		i++
	}
}
