#!/bin/bash
# Build vmflow's tiny guest from Debian packages only (kernel, busybox, qemu-ga).
# Output in $1 (default /var/cache/vmflow/tiny-guest):
#   vmlinux.pvh  decompressed kernel with a PVH note: QEMU boots it directly,
#                skipping the ~2.5 s decompressor under TCG
#   initrd.img   busybox + virtio/ext4 modules; mounts the root disk, switch_root
#   root.qcow2   ext4 root: busybox init, acpid power button, respawned qemu-ga,
#                /sbin/shutdown shim (qemu-ga execs `shutdown -h -P +0`), a DHCP
#                client (busybox udhcpc) on every virtio NIC, at boot and hotplugged
# Built once: a finished build leaves a .done stamp (this script's checksum) and is
# reused until the script changes.
set -euo pipefail
OUT=${1:-/var/cache/vmflow/tiny-guest}
STAMP=$(sha256sum "$0" | cut -d' ' -f1)
[ "$(cat "$OUT/.done" 2>/dev/null)" = "$STAMP" ] && exit 0
KVER=${KVER:-$(ls /boot/vmlinuz-* | sort -V | tail -1 | sed 's|/boot/vmlinuz-||')}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
chmod 755 "$OUT" "$(dirname "$OUT")"

python3 - "/boot/vmlinuz-$KVER" "$WORK/vmlinux.pvh" <<'PY'
import subprocess, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")
# xz exits 1 on the kernel's trailing bytes; the ELF it wrote is complete
elf = subprocess.run(["xz", "-dc"], input=data[start:], capture_output=True).stdout
if elf[:4] != b"\x7fELF":
    sys.exit("no xz-compressed ELF found in the kernel image")
open(sys.argv[2], "wb").write(elf)
PY

# ---- stage 1: initramfs ----
I=$WORK/initramfs
mkdir -p "$I"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$I/bin/busybox"
for a in sh mount umount insmod switch_root sleep cat mkdir echo; do ln -s busybox "$I/bin/$a"; done
# nfsv4 (with sunrpc, nfs, dns_resolver...): a guest mounts its share (mount.nfs4 below)
MODS="virtio_pci virtio_blk virtio_console crc32c_generic ext4 button evdev isofs virtio_rng virtio_net nfsv4"
for m in $MODS; do
  modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$I/lib/modules/"; basename "$ko" >> "$I/modules.order"
done
cat > "$I/init" <<'INIT'
#!/bin/busybox sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do insmod /lib/modules/$m 2>/dev/null; done
root=/dev/vda
for w in $(cat /proc/cmdline); do case $w in vmflow.root=*) root=${w#vmflow.root=};; esac; done
i=0; while [ ! -b $root ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
mount -t ext4 -o rw $root /newroot || { echo "stage1: cannot mount $root"; exec sh; }
mount -o move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
INIT
chmod 755 "$I/init"
(cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initrd.img"

# ---- stage 2: root file system ----
R=$WORK/rootfs
mkdir -p "$R"/{bin,sbin,etc/init.d,etc/acpi/PWRF,proc,sys,dev,run,tmp,data,rescue,root,var,usr/sbin,mnt/config}
ln -s ../run "$R/var/run"
cp /bin/busybox "$R/bin/busybox"
for a in $(/bin/busybox --list); do
  case $a in busybox|init|shutdown) ;; *) ln -sf /bin/busybox "$R/bin/$a";; esac
done
ln -s /bin/busybox "$R/sbin/init"
cp /usr/sbin/qemu-ga "$R/usr/sbin/qemu-ga"
# nfs-common's mount helper: busybox mount knows only NFSv2/3's binary mount data;
# mount.nfs4 passes NFSv4's text options (one TCP connection to 2049, no rpcbind)
cp /sbin/mount.nfs "$R/sbin/mount.nfs"; ln -s mount.nfs "$R/sbin/mount.nfs4"
for lib in $(for b in /usr/sbin/qemu-ga /sbin/mount.nfs; do ldd $b; done | grep -o '/[^ ]*' | sort -u); do
  mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
done
cat > "$R/etc/inittab" <<'TAB'
::sysinit:/etc/init.d/rcS
::respawn:/etc/init.d/qga
::ctrlaltdel:/bin/reboot
::shutdown:/etc/init.d/rcK
TAB
cat > "$R/etc/init.d/rcS" <<'RCS'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q " /dev " /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname vmflow-tiny
rescue=0; grep -q 'vmflow.rescue' /proc/cmdline && rescue=1
# the second ext4 disk: the original root in rescue mode, else a data disk
second=$(findfs LABEL=vmflow-data 2>/dev/null)
[ $rescue = 1 ] && second=/dev/vdb
if [ -n "$second" ] && [ -b "$second" ]; then
  if [ $rescue = 1 ]; then mount -t ext4 -o ro $second /rescue; else mount -t ext4 $second /data; fi
fi
# config drive: the ISO 9660 volume labelled config-2, as Nova attaches it
cd=$(findfs LABEL=config-2 2>/dev/null) && mount -t iso9660 -o ro "$cd" /mnt/config
acpid -c /etc/acpi -l /run/acpid.log
ip link set lo up
/etc/init.d/netwatch &
# TCP test servers: they answer with the hostname
nc -ll -p 22 -e /bin/hostname &
nc -ll -p 8080 -e /bin/hostname &
echo "vmflow-tiny: up" > /dev/kmsg
RCS
# every NIC gets a DHCP client once it exists: at boot (virtio_net is in the initrd, so
# eth0 is there already) and when one is hotplugged; no udev, no uevent helper in the
# Debian kernel, so a 1 s look at /sys/class/net. In the background: init reaches
# qemu-ga without waiting for a lease (3.6-3.9 s of uptime under TCG).
cat > "$R/etc/init.d/netwatch" <<'NETW'
#!/bin/sh
while :; do
  for d in /sys/class/net/eth*; do
    [ -e "$d" ] || continue
    i=${d##*/}; pidf=/run/udhcpc.$i.pid
    [ -f $pidf ] && kill -0 "$(cat $pidf)" 2>/dev/null && continue
    ip link set $i up
    echo "vmflow-net: udhcpc $i start uptime=$(cut -d' ' -f1 /proc/uptime)" >> /run/net.log
    udhcpc -f -i $i -s /etc/udhcpc.script -t 5 -T 1 -A 1 -O mtu -p $pidf \
      -x hostname:$(hostname) >> /run/udhcpc.$i.log 2>&1 &
    echo $! > $pidf
  done
  sleep 1
done
NETW
cat > "$R/etc/udhcpc.script" <<'UD'
#!/bin/sh
# busybox udhcpc's event script: address, router (eth0 only), DNS, MTU
case "$1" in
  deconfig) ip addr flush dev $interface; ip link set $interface up ;;
  bound|renew)
    [ -n "$mtu" ] && ip link set $interface mtu $mtu
    ip addr flush dev $interface
    ip addr add $ip/${mask:-24} dev $interface
    if [ -n "$router" ] && [ $interface = eth0 ]; then
      ip route del default 2>/dev/null
      for r in $router; do ip route add default via $r dev $interface; break; done
    fi
    : > /etc/resolv.conf; for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "vmflow-net: $1 $interface ip=$ip/$mask router=$router mtu=$mtu uptime=$(cut -d' ' -f1 /proc/uptime)" | tee -a /run/net.log > /dev/kmsg ;;
esac
exit 0
UD
cat > "$R/etc/init.d/qga" <<'QGA'
#!/bin/sh
# no udev: find the virtio-serial port named org.qemu.guest_agent.0 by hand
# (touch /run/noqga to play a guest whose agent died)
if [ -e /run/noqga ]; then sleep 2; exit 0; fi
for d in /sys/class/virtio-ports/*; do
  [ "$(cat $d/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${d##*/}
done
if [ -z "$port" ]; then sleep 5; exit 1; fi
mkdir -p /dev/virtio-ports /run/qga
ln -sf $port /dev/virtio-ports/org.qemu.guest_agent.0
exec /usr/sbin/qemu-ga -m virtio-serial -p $port -t /run/qga -l /run/qga.log
QGA
cat > "$R/etc/init.d/rcK" <<'RCK'
#!/bin/sh
sync
umount /data /rescue /mnt/config 2>/dev/null
mount -o remount,ro / 2>/dev/null
RCK
cat > "$R/sbin/shutdown" <<'SHUT'
#!/bin/sh
case "$*" in
  *-r*) exec /bin/busybox reboot ;;
  *-H*) exec /bin/busybox halt ;;
  *)    exec /bin/busybox poweroff ;;
esac
SHUT
cat > "$R/etc/acpi/PWRF/00000080" <<'PWR'
#!/bin/sh
exec /bin/busybox poweroff
PWR
chmod 755 "$R"/etc/init.d/* "$R/etc/udhcpc.script" "$R/sbin/shutdown" "$R/etc/acpi/PWRF/00000080"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"
echo "vmflow-tiny kernel=$KVER" > "$R/etc/vmflow-release"
mkfs.ext4 -q -F -L vmflow-root -d "$R" "$WORK/root.raw" 64M
qemu-img convert -f raw -O qcow2 "$WORK/root.raw" "$WORK/root.qcow2"

install -m 644 "$WORK/vmlinux.pvh" "$WORK/initrd.img" "$WORK/root.qcow2" "$OUT/"
echo "$STAMP" > "$OUT/.done"
