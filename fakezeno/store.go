package fakezeno

import (
	"fmt"
	"sync"
	"time"
)

// dayOf is the local calendar day, like the server's date.today().
func dayOf(t time.Time) int32 {
	y, m, d := t.Date()
	return int32(y*10000 + int(m)*100 + d)
}

// quotaStore holds one counter per key prefix. sync.Map keeps the lookup
// lock-free once a prefix exists; each counter has its own short mutex.
type quotaStore struct {
	m sync.Map // prefix -> *quotaCounter
}

type quotaCounter struct {
	mu    sync.Mutex
	day   int32
	used  int64
	quota int
}

func (q *quotaStore) counter(prefix string, quota int) *quotaCounter {
	if c, ok := q.m.Load(prefix); ok {
		return c.(*quotaCounter)
	}
	c, _ := q.m.LoadOrStore(prefix, &quotaCounter{quota: quota})
	return c.(*quotaCounter)
}

// inc counts one prompt and returns the count including it; the counter
// starts over on a new local day.
func (q *quotaStore) inc(prefix string, quota int, now time.Time) int64 {
	c := q.counter(prefix, quota)
	day := dayOf(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.day != day {
		c.day, c.used = day, 0
	}
	c.used++
	return c.used
}

func (q *quotaStore) peek(prefix string, quota int, now time.Time) int64 {
	c := q.counter(prefix, quota)
	day := dayOf(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.day != day {
		return 0
	}
	return c.used
}

func (q *quotaStore) reset() {
	q.m.Range(func(_, v any) bool {
		c := v.(*quotaCounter)
		c.mu.Lock()
		c.used = 0
		c.mu.Unlock()
		return true
	})
}

func (q *quotaStore) snapshot() map[string]QuotaUsage {
	out := map[string]QuotaUsage{}
	today := dayOf(time.Now())
	q.m.Range(func(k, v any) bool {
		c := v.(*quotaCounter)
		c.mu.Lock()
		u := QuotaUsage{Quota: c.quota, Day: fmt.Sprintf("%04d-%02d-%02d", today/10000, today/100%100, today%100)}
		if c.day == today {
			u.Used = c.used
		}
		c.mu.Unlock()
		out[k.(string)] = u
		return true
	})
	return out
}

// threadStore maps thread_id to its owner and turn count. It is sharded so
// concurrent new threads rarely contend. Zeno keeps every thread in its
// database; here each shard forgets its oldest threads past perShard, so a
// long run at --time-scale 0 (a new thread per request) stays bounded.
type threadStore struct {
	shards   [64]threadShard
	perShard int // 0: unbounded
}

type threadShard struct {
	mu sync.Mutex
	m  map[string]thread
	// order lists threads oldest first from head; a ref whose seq no longer
	// matches (deleted, or deleted and created again) is stale.
	order []threadRef
	head  int
	seq   uint64
}

type threadRef struct {
	id  string
	seq uint64
}

type thread struct {
	owner   string
	turns   int32
	seq     uint64
	readyAt time.Time // end of the creating request's pre-header phase
}

type threadResult uint8

const (
	threadCreated threadResult = iota
	threadContinued
	threadConflict
)

// newThreadStore keeps about limit threads (limit/64 per shard, rounded
// up); limit <= 0 keeps all.
func newThreadStore(limit int) *threadStore {
	t := &threadStore{}
	if limit > 0 {
		t.perShard = (limit + len(t.shards) - 1) / len(t.shards)
	}
	return t
}

func (t *threadStore) shard(id string) *threadShard {
	h := uint32(2166136261) // FNV-1a, inline to avoid allocating a hasher
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return &t.shards[h%uint32(len(t.shards))]
}

// acquire creates or continues thread id for owner. A thread owned by
// another key is a conflict, and so is one whose creating request is still
// before its headers: the real server then races on the primary key insert.
// evicted is how many old threads a new one pushed out.
func (t *threadStore) acquire(id, owner string, now, readyAt time.Time) (res threadResult, evicted int) {
	sh := t.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = map[string]thread{}
	}
	th, ok := sh.m[id]
	switch {
	case !ok:
		sh.seq++
		sh.m[id] = thread{owner: owner, turns: 1, seq: sh.seq, readyAt: readyAt}
		if t.perShard > 0 {
			evicted = sh.evict(id, t.perShard)
		}
		return threadCreated, evicted
	case th.owner != owner || now.Before(th.readyAt):
		return threadConflict, 0
	}
	th.turns++
	sh.m[id] = th
	return threadContinued, 0
}

// staleSlack lets a small shard's order list hold a few stale refs before
// it is compacted.
const staleSlack = 16

// live reports whether ref names a thread still in the shard, in the same
// life it was recorded in.
func (sh *threadShard) live(ref threadRef) bool {
	th, ok := sh.m[ref.id]
	return ok && th.seq == ref.seq
}

// evict records the thread id just created and forgets the oldest threads
// while the shard holds more than limit.
func (sh *threadShard) evict(id string, limit int) (n int) {
	sh.order = append(sh.order, threadRef{id, sh.seq})
	for len(sh.m) > limit && sh.head < len(sh.order) {
		ref := sh.order[sh.head]
		sh.order[sh.head] = threadRef{}
		sh.head++
		if sh.live(ref) {
			delete(sh.m, ref.id)
			n++
		}
	}
	// Deleted threads leave stale refs behind; drop them once they could
	// outnumber the live ones, so order stays within about 2*limit.
	if rest := sh.order[sh.head:]; len(rest) > 2*limit+staleSlack || sh.head > len(sh.order)/2 {
		k := 0
		for _, ref := range rest {
			if sh.live(ref) {
				sh.order[k] = ref
				k++
			}
		}
		clear(sh.order[k:])
		sh.order, sh.head = sh.order[:k], 0
	}
	return n
}

func (t *threadStore) remove(id, owner string) bool {
	sh := t.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if th, ok := sh.m[id]; ok && th.owner == owner {
		delete(sh.m, id)
		return true
	}
	return false
}

func (t *threadStore) turnHistogram() (map[int]int64, int64) {
	h := map[int]int64{}
	var n int64
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, th := range sh.m {
			h[int(th.turns)]++
			n++
		}
		sh.mu.Unlock()
	}
	return h, n
}
