# clonecd — see README.md. `make` builds clonecd.iso from node.cpio.gz,
# node.sfdisk and CLONE_CD_VERSION (the Medusa workflow).
SHELL      := /bin/bash
GO         ?= go
GOFLAGS_ST := CGO_ENABLED=0 GOAMD64=v1
CACHE      ?= /var/cache/clonecd
GOLDEN     ?= $(CACHE)/golden-bookworm
VERSION    := $(shell cat CLONE_CD_VERSION)
BIN        := build/clonecd
export CLONECD_GOLDEN := $(GOLDEN)
export PATH := $(PATH):/usr/sbin:/sbin:$(shell $(GO) env GOPATH 2>/dev/null)/bin

.PHONY: all deps golden test bench demo lint deb rdfs rd clean FORCE

all: clonecd.iso

$(BIN): FORCE
	@mkdir -p build
	$(GOFLAGS_ST) $(GO) build -trimpath -ldflags "-s -w -X github.com/clonecd/clonecd/cli.Version=$(VERSION)" -o $@ ./cmd/clonecd

clonecd: $(BIN)
	cp $(BIN) clonecd

clonecd.iso: $(BIN) node.cpio.gz node.sfdisk CLONE_CD_VERSION
	$(BIN) build --image node.cpio.gz --layout node.sfdisk --version $(VERSION) -o $@

deps:
	@sh scripts/deps.sh

# build/clonecd_VERSION_ARCH.deb (packaging/, nfpm as a library): the
# binary, clonecd-serve.service, completions, man pages. The date of the
# last commit makes the package reproducible.
deb: $(BIN)
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) $(GO) run ./packaging/cmd/mkdeb -o build $(BIN)

# The golden root, and the test nodes' root made from it (scripts/node-root.sh).
golden: deps
	@sh scripts/golden-root.sh $(GOLDEN) >/dev/null
	@sh scripts/node-root.sh $(GOLDEN) >/dev/null

# The golden root packed by clonecd, shared by the tests that need an image.
$(CACHE)/node-golden.cpio.gz: $(BIN) FORCE
	@mkdir -p $(CACHE)
	$(BIN) pack -q -o $@ $(GOLDEN)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	staticcheck ./...

# Then the overlapped unpack once more under the race detector (cgo: gcc).
# build/vm.log: every VM's slot wait and run time.
test: golden $(BIN) lint
	: > build/vm.log
	CLONECD_STRICT=1 CLONECD_VM_LOG=$(abspath build/vm.log) CLONECD_BIN=$(abspath $(BIN)) $(GO) test -p 2 -timeout 85m -count=1 ./... 2>&1 | tee build/test.log; exit $${PIPESTATUS[0]}
	CLONECD_STRICT=1 CGO_ENABLED=1 $(GO) test -race -count=1 -run '^TestUnpackParallel$$' ./image 2>&1 | tee -a build/test.log; exit $${PIPESTATUS[0]}

bench: golden $(BIN)
	CLONECD_STRICT=1 CLONECD_BIN=$(abspath $(BIN)) $(GO) test -p 1 -timeout 60m -run '^$$' -bench . -benchtime 1x ./... 2>&1 | tee build/bench.log; exit $${PIPESTATUS[0]}

# The boot matrix of docs/pxe.md (not in CI: about an hour under
# TCG): the ISO in probe mode under SeaBIOS and OVMF x IDE, SATA, virtio,
# NVMe x e1000, virtio-net, rtl8139 (24 boots), then one full clone per
# disk type booted to login; the Secure Boot PXE chain (TestPXESecureBoot);
# then e2e's power-cut matrix with every step cut in every chain (make test
# cuts each step in two of the four chains). The table lands in build/matrix.md.
.PHONY: matrix
matrix: golden $(BIN) ## boot matrix: BIOS/UEFI x 4 disk buses x 3 NICs, plus a clone per disk (slow, not in CI)
	@mkdir -p build
	CLONECD_STRICT=1 CLONECD_MATRIX=1 CLONECD_MATRIX_OUT=$(abspath build/matrix.md) CLONECD_BIN=$(abspath $(BIN)) \
		$(GO) test -count=1 -timeout 240m -run '^(TestMatrix|TestPXESecureBoot)$$' -v ./pxe/ 2>&1 | tee build/matrix.log; exit $${PIPESTATUS[0]}
	CLONECD_STRICT=1 CLONECD_MATRIX=1 CLONECD_BIN=$(abspath $(BIN)) \
		$(GO) test -count=1 -timeout 180m -run '^TestPowerCut$$' -v ./e2e/ 2>&1 | tee -a build/matrix.log; exit $${PIPESTATUS[0]}

demo: golden $(BIN)
	sh scripts/demo.sh $(BIN) $(GOLDEN)

# The Medusa page's targets for new hardware: unpack initrd.img into
# initrd/, edit, pack it back.
rdfs: $(BIN)
	rm -rf initrd && mkdir initrd && $(BIN) unpack initrd.img initrd

rd: $(BIN)
	$(BIN) initramfs --from-dir initrd -o initrd.img

clean:
	rm -rf build clonecd clonecd.iso initrd
