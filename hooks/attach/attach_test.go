package attach

import (
	"context"
	"errors"
	"testing"
)

type session struct{}

func (*session) Output() Output                     { return Output{} }
func (*session) Stream(context.Context, Sink) error { return nil }
func (*session) Stats() Stats                       { return Stats{} }
func (*session) Close() error                       { return nil }
func open(fail bool) (*session, error) {
	if fail {
		return nil, errors.New("no")
	}
	return &session{}, nil
}

// A failed Open returns a nil Session, which a caller can test with == nil,
// not a Session holding a nil *session.
func TestOpened(t *testing.T) {
	if s, err := Opened(open(true)); s != nil || err == nil {
		t.Errorf("Opened of a failure = %#v, %v; want nil and the error", s, err)
	}
	if s, err := Opened(open(false)); s == nil || err != nil {
		t.Errorf("Opened of a session = %#v, %v", s, err)
	}
}
