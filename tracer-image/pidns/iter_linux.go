package pidns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// taskIDsSize is sizeof(struct task_ids) of pidns.c: four __u32.
const taskIDsSize = 16

// The iterator is loaded once and kept: loading verifies the program and
// resolves its CO-RE relocations, which costs more than a walk of the
// tasks. mu serializes the use of config.
var (
	mu      sync.Mutex
	loaded  *pidnsObjects
	iter    *link.Iter
	loadErr error
)

func load() error {
	if loaded != nil || loadErr != nil {
		return loadErr
	}
	var objs pidnsObjects
	if err := loadPidnsObjects(&objs, nil); err != nil {
		loadErr = fmt.Errorf("loading the task iterator: %w", err)
		return loadErr
	}
	it, err := link.AttachIter(link.IterOptions{Program: objs.DumpTaskIds})
	if err != nil {
		objs.Close()
		loadErr = fmt.Errorf("attaching the task iterator: %w", err)
		return loadErr
	}
	loaded, iter = &objs, it
	return nil
}

// Take walks every task of the node and returns their global ids and
// their ids in the pid namespace whose inode is ns.
func Take(ns uint64) (*Snapshot, error) {
	mu.Lock()
	defer mu.Unlock()
	if err := load(); err != nil {
		return nil, err
	}
	if ns == 0 || ns > 0xffffffff {
		return nil, fmt.Errorf("pid namespace inode %d out of range", ns)
	}
	if err := loaded.Config.Update(uint32(0), uint32(ns), ebpf.UpdateAny); err != nil {
		return nil, fmt.Errorf("setting the task iterator's namespace: %w", err)
	}
	rc, err := iter.Open()
	if err != nil {
		return nil, fmt.Errorf("opening the task iterator: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading the task iterator: %w", err)
	}
	return parse(ns, b)
}

func parse(ns uint64, b []byte) (*Snapshot, error) {
	if len(b)%taskIDsSize != 0 {
		return nil, errors.New("task iterator: truncated record")
	}
	tasks := make([]Task, 0, len(b)/taskIDsSize)
	level := -1
	for ; len(b) > 0; b = b[taskIDsSize:] {
		t := Task{
			TID:  int(binary.NativeEndian.Uint32(b[0:])),
			TGID: int(binary.NativeEndian.Uint32(b[4:])),
			NR:   int(int32(binary.NativeEndian.Uint32(b[8:]))),
		}
		if t.NR > 0 {
			level = int(binary.NativeEndian.Uint32(b[12:]))
		}
		tasks = append(tasks, t)
	}
	return newSnapshot(ns, level, tasks), nil
}
