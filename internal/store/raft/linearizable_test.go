package raft

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"tresor/internal/store"
)

// regInput is an operation on a register (a region value).
type regInput struct {
	key   string
	write bool
	value string // the value written
}

// registers is porcupine's model of keys each holding a value ("" =
// absent), partitioned by key.
var registers = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var parts [][]porcupine.Operation
		for _, k := range keys {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) → %q", in.key, output)
	},
}

// TestLinearizable records a history of writes and reads of two keys by
// several clients through every node while the leader is closed midway,
// and checks it with porcupine.
//
// A View reads the node's local state, which may lag the leader's (that is
// the lease's bound, by design): a bare View on a follower is not
// linearizable. A read here is a write to a key of the client's own
// followed by a View on the same node: read-your-writes makes the node
// have applied everything committed before the read began. A write that
// failed may have been applied, so it is recorded as possibly applied at
// any time after its call (an infinite return time); a failed read is left
// out (it observed nothing).
func TestLinearizable(t *testing.T) {
	c := newCluster(t, 3, fast)
	stores := []*Store{c.nodes[0].s, c.nodes[1].s, c.nodes[2].s}
	keys := []string{"x", "y"}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		failed  int
	)
	record := func(op porcupine.Operation) {
		mu.Lock()
		history = append(history, op)
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for client := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(client), 1))
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				s := stores[rng.IntN(len(stores))]
				if s.closed.Load() {
					continue
				}
				key := keys[rng.IntN(len(keys))]
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if rng.IntN(2) == 0 {
					in := regInput{key: key, write: true, value: fmt.Sprintf("c%d-%d", client, seq)}
					call := now()
					err := s.Apply(ctx, store.PutRegionValue{Key: key, Value: []byte(in.value)})
					ret := now()
					if err != nil {
						ret = math.MaxInt64 // may have been applied
						mu.Lock()
						failed++
						mu.Unlock()
					}
					record(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: "", Return: ret})
				} else {
					in := regInput{key: key}
					call := now()
					err := s.Apply(ctx, store.PutRegionValue{Key: fmt.Sprint("sync-", client), Value: []byte{byte(seq)}})
					var v []byte
					if err == nil {
						err = s.View(ctx, func(r store.Reader) error {
							var err error
							v, err = r.RegionValue(key)
							if errors.Is(err, store.ErrNotFound) {
								err = nil
							}
							return err
						})
					}
					ret := now()
					if err == nil {
						record(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: string(v), Return: ret})
					}
				}
				cancel()
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	c.stop(c.leader())
	time.Sleep(1300 * time.Millisecond)
	close(stop)
	wg.Wait()

	reads, writes := 0, 0
	for _, op := range history {
		if op.Input.(regInput).write {
			writes++
		} else {
			reads++
		}
	}
	t.Logf("%d writes (%d failed), %d reads", writes, failed, reads)
	if reads < 20 || writes < 20 {
		t.Fatalf("too few operations: %d reads, %d writes", reads, writes)
	}
	res := porcupine.CheckOperationsTimeout(registers, history, 30*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("porcupine: history is %s", res)
	}
}

// TestRegistersModel: the model refuses a stale read (a read that starts
// after a write returned and sees the value before it) and accepts a
// possibly applied write seen or not seen.
func TestRegistersModel(t *testing.T) {
	w := func(v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: regInput{key: "x", write: true, value: v}, Call: call, Output: "", Return: ret}
	}
	r := func(v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: regInput{key: "x"}, Call: call, Output: v, Return: ret}
	}
	tests := map[string]struct {
		history []porcupine.Operation
		want    bool
	}{
		"fresh read":           {[]porcupine.Operation{w("a", 0, 10), r("a", 11, 12)}, true},
		"stale read":           {[]porcupine.Operation{w("a", 0, 10), w("b", 11, 20), r("a", 21, 22)}, false},
		"concurrent read":      {[]porcupine.Operation{w("a", 0, 10), w("b", 11, 20), r("a", 15, 22)}, true},
		"unknown write seen":   {[]porcupine.Operation{w("a", 0, math.MaxInt64), r("a", 11, 12)}, true},
		"unknown write unseen": {[]porcupine.Operation{w("a", 0, math.MaxInt64), r("", 11, 12)}, true},
		"unseen then seen":     {[]porcupine.Operation{w("a", 0, 10), w("b", 5, math.MaxInt64), r("b", 11, 12), r("a", 13, 14)}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := porcupine.CheckOperations(registers, tc.history); got != tc.want {
				t.Fatalf("CheckOperations = %v, want %v", got, tc.want)
			}
		})
	}
}
