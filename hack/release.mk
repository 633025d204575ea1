# Release targets (goreleaser, krew). Included by the Makefile.
