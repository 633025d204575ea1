package session

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// podTick is how often followPod calls back with the last state it saw
// when nothing changes, so that callers can print events of a pod stuck in
// a waiting state.
const podTick = time.Second

// followPod calls fn with the pod's state each time it changes, and every
// podTick with the last state seen (tick true), until fn says done, fn
// fails, or ctx ends. It watches the one pod, so a container that starts
// is seen as soon as the kubelet reports it: polling added half an interval
// on average to the time to the first event. Users whose role has get but
// not watch (docs/security.md) are served by polling instead.
func followPod(ctx context.Context, client kubernetes.Interface, namespace, name string, fn func(pod *corev1.Pod, tick bool) (bool, error)) error {
	pods := client.CoreV1().Pods(namespace)
	ticker := time.NewTicker(podTick)
	defer ticker.Stop()
	var last *corev1.Pod
	call := func(p *corev1.Pod, tick bool) (bool, error) {
		last = p
		return fn(p, tick)
	}
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	for ctx.Err() == nil {
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return pollPod(ctx, client, namespace, name, call)
		}
		done, err := drainWatch(ctx, w, ticker.C, func(p *corev1.Pod, tick bool) (bool, error) {
			if p == nil {
				if last == nil {
					return false, nil
				}
				p = last
			}
			return call(p, tick)
		})
		w.Stop()
		if done || err != nil {
			return err
		}
		// The server ended the watch (timeout, compaction): watch again;
		// a watch without a resource version starts with the pod's state.
	}
	return ctx.Err()
}

// drainWatch feeds one watch's pod states to fn; p is nil on a tick before
// any state came. It returns with done false when the watch ends.
func drainWatch(ctx context.Context, w watch.Interface, tick <-chan time.Time, fn func(p *corev1.Pod, tick bool) (bool, error)) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick:
			if done, err := fn(nil, true); done || err != nil {
				return done, err
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				if done, err := fn(p, false); done || err != nil {
					return done, err
				}
			case watch.Deleted:
				p, _ := ev.Object.(*corev1.Pod)
				if p == nil {
					return false, fmt.Errorf("pod was deleted")
				}
				return false, fmt.Errorf("pod %s/%s was deleted while starting (by someone else, or its node went away)", p.Namespace, p.Name)
			case watch.Error:
				// An expired resource version or an internal error: the
				// caller watches again from the current state.
				return false, nil
			}
		}
	}
}

// pollPod is followPod by repeated gets.
func pollPod(ctx context.Context, client kubernetes.Interface, namespace, name string, fn func(pod *corev1.Pod, tick bool) (bool, error)) error {
	lastTick := time.Now()
	for {
		p, err := client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case apierrors.IsNotFound(err):
			return fmt.Errorf("pod %s/%s was deleted while starting (by someone else, or its node went away)", namespace, name)
		case err != nil:
			return fmt.Errorf("getting pod %s/%s: %w", namespace, name, err)
		}
		tick := time.Since(lastTick) >= podTick
		if tick {
			lastTick = time.Now()
		}
		if done, err := fn(p, tick); done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}
