"""nfs-ganesha's files on a storage host: where they live under storage_dir and the two
configs vmflow writes whole (the main ganesha config and its private D-Bus config).

Testbed NOTES 1b: ganesha (FSAL VFS) changes exports at run time over D-Bus; a bus of
its own keeps it off /run/dbus; one file per export, each %include'd by the main
config. The stack (vmflow.stack) starts the processes; the export files themselves are
activities.storage.ganesha's.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from vmflow.settings import Settings

NFS_PORT = 2049
GANESHA_BUS = "org.ganesha.nfsd"
EXPORT_MGR_PATH = "/org/ganesha/nfsd/ExportMgr"
EXPORT_MGR_IFACE = "org.ganesha.nfsd.exportmgr"

MAIN_CONF = """\
# Written by vmflow, rewritten whenever an export file appears or goes: a SIGHUP or a
# restart reconciles ganesha to this file, dropping any export not %include'd here.
NFS_CORE_PARAM {{
    # no Bind_addr: every address of its own network namespace (vmflow.storage_netns),
    # loopback and the hosts' underlay, so clients of any network routed there reach it
    NFS_Port = {port};
    # fixed ports below Linux's ephemeral range (32768-60999): a port in it may be
    # taken by any outgoing connection, and ganesha then cannot start
    MNT_Port = 20048;
    NLM_Port = 20050;
    Protocols = 3, 4;
    Enable_RQUOTA = false;
}}
NFSV4 {{
    Graceless = true;  # no 90 s grace period after each start
    RecoveryBackend = fs;
    RecoveryRoot = "{recovery}";
}}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT_DEFAULTS {{
    Access_Type = None;  # nobody gets in unless an export's CLIENT block lets them
}}
LOG {{ Default_Log_Level = EVENT; }}
{includes}"""

DBUS_CONF = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- Written by vmflow: nfs-ganesha's own system-type bus. -->
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="{user}"/>
    <deny own="*"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <policy user="{user}">
    <allow own="{bus_name}"/>
    <allow send_destination="{bus_name}"/>
  </policy>
</busconfig>
"""


def ganesha_dir(s: Settings) -> Path:
    return s.storage_dir / "ganesha"


def exports_dir(s: Settings) -> Path:
    """One file per share, <share_id>.conf (activities.storage.ganesha writes them)."""
    return ganesha_dir(s) / "exports"


def main_config(s: Settings) -> Path:
    return ganesha_dir(s) / "ganesha.conf"


def dbus_config(s: Settings) -> Path:
    return ganesha_dir(s) / "dbus.conf"


def dbus_socket(s: Settings) -> Path:
    return ganesha_dir(s) / "dbus.sock"


def dbus_address(s: Settings) -> str:
    """What DBUS_SYSTEM_BUS_ADDRESS is for ganesha and its clients."""
    return f"unix:path={dbus_socket(s)}"


def write_atomic(path: Path, text: str) -> None:
    """Readers (ganesha at a restart) see the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")  # not *.conf: never %include'd
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def config_path(path: Path) -> str:
    """A path as it goes, quoted, into ganesha's config; refuse one that could end the
    quoted string or start a new statement."""
    text = str(path)
    if not path.is_absolute() or any(c in text for c in '"\\\n\r{};#\0'):
        raise ValueError(f"path not usable in the nfs-ganesha config: {text!r}")
    return text


def write_main_config(s: Settings) -> Path:
    """The main config with one %include per export file, in a stable order."""
    exports, recovery = exports_dir(s), ganesha_dir(s) / "recovery"
    config_path(exports)  # before anything is made there
    exports.mkdir(parents=True, exist_ok=True)
    recovery.mkdir(exist_ok=True)
    includes = "".join(f'%include "{config_path(p)}"\n' for p in sorted(exports.glob("*.conf")))
    path = main_config(s)
    write_atomic(path, MAIN_CONF.format(port=NFS_PORT, recovery=config_path(recovery),
                                        includes=includes))
    return path


def write_dbus_config(s: Settings) -> Path:
    """The bus config; a socket left by a killed daemon goes (it would refuse to bind)."""
    sock = dbus_socket(s)
    if len(str(sock)) > 100:  # sun_path holds 108 bytes
        raise ValueError(f"D-Bus socket path too long for a unix socket: {sock}")
    sock.parent.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    user = pwd.getpwuid(os.geteuid()).pw_name
    path = dbus_config(s)
    write_atomic(path, DBUS_CONF.format(socket=xml_escape(str(sock)), user=xml_escape(user),
                                        bus_name=GANESHA_BUS))
    return path
