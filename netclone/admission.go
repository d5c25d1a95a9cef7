package netclone

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Stats counts image streams on the server.
type Stats struct {
	Active   int   `json:"active"`   // streams being served now
	Peak     int   `json:"peak"`     // most streams ever served at once
	Queued   int   `json:"queued"`   // requests waiting for a slot now
	Served   int64 `json:"served"`   // streams started in total
	Refused  int64 `json:"refused"`  // requests sent away busy (queue full or waited too long)
	Max      int   `json:"max"`      // the admission limit
	MaxQueue int   `json:"maxQueue"` // the queue's limit
}

var (
	errQueueFull = errors.New("the queue for an image stream is full")
	errQueueWait = errors.New("waited too long for an image stream")
)

// admission is a FIFO semaphore with a bounded queue: at most max
// holders, at most maxQueue waiting in arrival order, each for at most
// wait.
type admission struct {
	mu       sync.Mutex
	max      int
	maxQueue int
	wait     time.Duration
	active   int
	peak     int
	served   int64
	refused  int64
	queue    []chan struct{}
}

// acquire takes a slot, waiting in line if needed. It fails with
// errQueueFull when maxQueue are already waiting, errQueueWait after
// waiting a.wait, or the context's error. queued, if not nil, is called
// once the request waits, with the number ahead of it.
func (a *admission) acquire(ctx context.Context, queued func(ahead int)) error {
	a.mu.Lock()
	if a.active < a.max && len(a.queue) == 0 {
		a.grantLocked()
		a.mu.Unlock()
		return nil
	}
	if len(a.queue) >= a.maxQueue {
		a.refused++
		a.mu.Unlock()
		return errQueueFull
	}
	ch := make(chan struct{})
	a.queue = append(a.queue, ch)
	ahead := len(a.queue) - 1
	a.mu.Unlock()
	if queued != nil {
		queued(ahead)
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	var err error
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = errQueueWait
	}
	a.mu.Lock()
	for i, c := range a.queue {
		if c == ch {
			a.queue = append(a.queue[:i], a.queue[i+1:]...)
			if err == errQueueWait {
				a.refused++
			}
			a.mu.Unlock()
			return err
		}
	}
	a.mu.Unlock()
	// Granted meanwhile: pass the slot on.
	a.release()
	return err
}

func (a *admission) grantLocked() {
	a.active++
	a.served++
	if a.active > a.peak {
		a.peak = a.active
	}
}

func (a *admission) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.active--
	if len(a.queue) > 0 && a.active < a.max {
		ch := a.queue[0]
		a.queue = a.queue[1:]
		a.grantLocked()
		close(ch)
	}
}

func (a *admission) stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Stats{Active: a.active, Peak: a.peak, Queued: len(a.queue), Served: a.served, Refused: a.refused, Max: a.max, MaxQueue: a.maxQueue}
}
