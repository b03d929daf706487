package fakezeno

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// sameShard returns n ids that hash to the shard of first (first included).
func sameShard(t *testing.T, ts *threadStore, first string, n int) []string {
	t.Helper()
	want := ts.shard(first)
	ids := []string{first}
	for i := 0; len(ids) < n && i < 1_000_000; i++ {
		if id := fmt.Sprintf("t-%d", i); ts.shard(id) == want {
			ids = append(ids, id)
		}
	}
	if len(ids) < n {
		t.Fatalf("found %d ids in one shard, want %d", len(ids), n)
	}
	return ids
}

func TestThreadStoreBounded(t *testing.T) {
	const limit = 256 // 4 per shard
	ts := newThreadStore(limit)
	now := time.Now()
	evicted := 0
	const n = 10_000
	for i := range n {
		res, ev := ts.acquire(fmt.Sprintf("thread-%d", i), "p", now, now)
		if res != threadCreated {
			t.Fatalf("thread %d: result %d", i, res)
		}
		evicted += ev
	}
	_, active := ts.turnHistogram()
	if active > limit || active < limit/2 {
		t.Fatalf("active %d threads, want about %d", active, limit)
	}
	if int(active)+evicted != n {
		t.Fatalf("active %d + evicted %d != created %d", active, evicted, n)
	}
	// The newest thread of every shard is kept: a conversation in progress
	// goes on.
	if res, _ := ts.acquire(fmt.Sprintf("thread-%d", n-1), "p", now, now); res != threadContinued {
		t.Fatalf("newest thread: result %d, want continued", res)
	}
	for i := range ts.shards {
		if sh := &ts.shards[i]; len(sh.order)-sh.head > 2*ts.perShard+staleSlack+1 {
			t.Fatalf("shard %d keeps %d refs for %d threads", i, len(sh.order)-sh.head, len(sh.m))
		}
	}
}

func TestThreadStoreUnbounded(t *testing.T) {
	ts := newThreadStore(-1)
	now := time.Now()
	for i := range 1000 {
		if _, ev := ts.acquire(fmt.Sprintf("thread-%d", i), "p", now, now); ev != 0 {
			t.Fatalf("evicted %d with no limit", ev)
		}
	}
	if _, active := ts.turnHistogram(); active != 1000 {
		t.Fatalf("active %d, want 1000", active)
	}
}

// A thread deleted and created again must not be evicted through the
// stale ref of its first life before older live threads.
func TestThreadStoreStaleRefs(t *testing.T) {
	ts := newThreadStore(128) // 2 per shard
	ids := sameShard(t, ts, "x", 3)
	x, b, a := ids[0], ids[1], ids[2]
	now := time.Now()
	ts.acquire(x, "p", now, now)
	if !ts.remove(x, "p") {
		t.Fatal("remove x")
	}
	ts.acquire(b, "p", now, now)
	if res, ev := ts.acquire(x, "p", now, now); res != threadCreated || ev != 0 {
		t.Fatalf("x again: result %d evicted %d", res, ev)
	}
	if res, ev := ts.acquire(a, "p", now, now); res != threadCreated || ev != 1 {
		t.Fatalf("a: result %d evicted %d, want created and 1 evicted", res, ev)
	}
	// b is now the oldest live thread, so it went; x (newer) stays.
	if res, _ := ts.acquire(x, "p", now, now); res != threadContinued {
		t.Fatalf("x was evicted through its stale ref (result %d)", res)
	}
	if res, _ := ts.acquire(a, "p", now, now); res != threadContinued {
		t.Fatalf("a was evicted (result %d)", res)
	}

	// Create and delete cycles must not grow the order list.
	for i := range 10_000 {
		id := fmt.Sprintf("cycle-%d", i)
		ts.acquire(id, "p", now, now)
		ts.remove(id, "p")
	}
	for i := range ts.shards {
		if sh := &ts.shards[i]; len(sh.order) > 2*ts.perShard+staleSlack+1 {
			t.Fatalf("shard %d: order holds %d refs for %d threads", i, len(sh.order), len(sh.m))
		}
	}
}

func TestMaxThreadsServer(t *testing.T) {
	s, ts := newTest(t, Config{MaxThreads: 64, Fixed: &Profile{Lines: 1}})
	const n = 300
	for i := range n {
		resp := post(t, ts, testToken, chatReqBody("hi", fmt.Sprintf("conv-%d", i)))
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		bodyOf(t, resp)
	}
	g := s.Stats()
	if g.ThreadsCreated != n || g.ThreadsActive > 64 || g.ThreadsActive+g.ThreadsEvicted != n {
		t.Fatalf("created %d active %d evicted %d", g.ThreadsCreated, g.ThreadsActive, g.ThreadsEvicted)
	}
	resp := post(t, ts, testToken, chatReqBody("hi", fmt.Sprintf("conv-%d", n-1)))
	bodyOf(t, resp)
	if g := s.Stats(); g.ThreadsContinued != 1 {
		t.Fatalf("the newest thread was not continued: %+v", g.ThreadsContinued)
	}
	req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/api/threads/conv-%d", ts.URL, n-1), nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	dr, err := ts.Client().Do(req)
	if err != nil || dr.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", err, dr)
	}
	dr.Body.Close()
	// The GroundTruth invariant.
	if g := s.Stats(); g.ThreadsDeleted != 1 || g.ThreadsCreated != g.ThreadsActive+g.ThreadsDeleted+g.ThreadsEvicted {
		t.Fatalf("created %d != active %d + deleted %d + evicted %d", g.ThreadsCreated, g.ThreadsActive, g.ThreadsDeleted, g.ThreadsEvicted)
	}
}
