"""Image files shipped inside Debian packages as a data source (for ``package_photos.py``, beside
this file; not part of the installed packages).

A *manifest* (tab-separated, one file a row) names every image by package, version and path
inside the package, with its SHA-256, its split and its licence. :func:`unpack_packages` brings
each package version into a cache once: ``apt-get download <package>=<version>`` (so the exact
version the manifest names), then ``dpkg-deb -x``. :func:`check_files` then checks every file
against the manifest's SHA-256, so a changed or missing file is reported by name instead of
silently entering a data set.

Cache layout (``<cache>/``)::

    debs/<package>_<version>_<arch>.deb   optional, by hand: unpacked instead of downloading
                                          (apt's own file name; ``:`` in a version is ``%3a``)
    unpacked/<package>_<version>/         the package's file tree; written to ``.partial`` and
                                          renamed when complete, so a killed run leaves no
                                          half-unpacked tree that would count as done

Downloads go to a temporary ``.download-*`` folder and the ``.deb`` is deleted once unpacked (the
unpacked tree is the cache); such folders left by a killed run are removed by the next one.
"""
import collections
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

from gimsanet_prep.errors import InputError
from gimsanet_prep.inputs import file_sha256, key_problem

MANIFEST_COLUMNS = ('key', 'split', 'package', 'version', 'path', 'sha256', 'licence', 'credit')
SPLITS = ('train', 'val')
PARTIAL_SUFFIX = '.partial'

Photo = collections.namedtuple('Photo', MANIFEST_COLUMNS)
Photo.__doc__ = """One manifest row: LMDB ``key``, ``split`` (train/val), Debian ``package`` and
``version``, ``path`` inside the package, ``sha256`` of the file, ``licence`` and ``credit``."""

_PACKAGE = re.compile(r'^[a-z0-9][a-z0-9+.-]+$')  # Debian policy 5.6.1
_VERSION = re.compile(r'^[0-9A-Za-z.+~:-]+$')
_SHA256 = re.compile(r'^[0-9a-f]{64}$')


# ----------------------------------------------------------------------------------- manifest
def _row_problems(photo):
    problems = []
    key = key_problem(photo.key)
    if key:
        problems.append(key)
    if photo.split not in SPLITS:
        problems.append(f'split must be one of {", ".join(SPLITS)}, got {photo.split!r}')
    if not _PACKAGE.match(photo.package):
        problems.append(f'invalid Debian package name {photo.package!r}')
    if not _VERSION.match(photo.version):
        problems.append(f'invalid Debian version {photo.version!r}')
    parts = photo.path.split('/')
    if not photo.path or photo.path.startswith('/') or '..' in parts or '' in parts:
        problems.append(f'path must be relative to the package root, without "..": {photo.path!r}')
    if not _SHA256.match(photo.sha256):
        problems.append(f'sha256 must be 64 lower-case hex digits, got {photo.sha256!r}')
    if not photo.licence:
        problems.append('licence is empty')
    return problems


def read_manifest(path):
    """The :class:`Photo` rows of a manifest, in file order.

    Format: UTF-8, tab-separated; blank lines and lines starting with ``#`` are skipped; the first
    other line is the header :data:`MANIFEST_COLUMNS`. Every malformed row, duplicate key and
    package listed with two versions is reported in one :class:`InputError` (with line numbers).
    """
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise InputError([f'{path}: cannot read the manifest ({exc.strerror})']) from None
    rows = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith('#')]
    if not rows or tuple(rows[0][1].split('\t')) != MANIFEST_COLUMNS:
        got = rows[0][1].split('\t') if rows else 'nothing'
        raise InputError([f'{path}: the header must be the tab-separated columns '
                          f'{", ".join(MANIFEST_COLUMNS)}; got {got}'])
    photos, problems, key_lines, versions = [], [], {}, {}
    for n, line in rows[1:]:
        fields = line.split('\t')
        where = f'{path} line {n}'
        if len(fields) != len(MANIFEST_COLUMNS):
            problems.append(f'{where}: {len(fields)} tab-separated fields, expected {len(MANIFEST_COLUMNS)}')
            continue
        photo = Photo(*(field.strip() for field in fields))
        problems += [f'{where}: {p}' for p in _row_problems(photo)]
        if photo.key in key_lines:
            problems.append(f'{where}: key {photo.key!r} is already used on line {key_lines[photo.key]}')
        key_lines.setdefault(photo.key, n)
        first = versions.setdefault(photo.package, (photo.version, n))
        if first[0] != photo.version:
            problems.append(f'{where}: {photo.package} version {photo.version} but line {first[1]} says {first[0]} '
                            '(one version per package)')
        photos.append(photo)
    if not photos and not problems:
        problems.append(f'{path}: lists no files')
    if problems:
        raise InputError(problems, header=f'Invalid manifest {path}')
    return photos


def manifest_digest(photos):
    """A SHA-256 over the keys and file checksums of ``photos``: stored with a build, so an output
    built from another selection is not taken for complete."""
    text = ''.join(f'{p.key} {p.sha256}\n' for p in sorted(photos))
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


# ----------------------------------------------------------------------------------- cache
def package_dirname(package, version):
    """``<package>_<version>`` with the epoch colon written ``%3a``, as apt names its files."""
    return f'{package}_{version.replace(":", "%3a")}'


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _run(cmd, what, cwd=None):
    """Run ``cmd``; ``None`` when it worked, else a one-line problem naming ``what``."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        return f'{what}: {cmd[0]} not found (a Debian/Ubuntu tool; see docs/data_preparation.md)'
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        # apt's warning about downloading as root, unsandboxed, is noise here
        lines = [line for line in lines if 'unsandboxed' not in line] or lines
        return f'{what}: `{" ".join(cmd)}` failed (exit {proc.returncode}): {" / ".join(lines[-3:])}'
    return None


def _deb_fields(deb):
    """(package, version) from the control file of ``deb``, or a problem string."""
    try:
        proc = subprocess.run(['dpkg-deb', '-f', deb, 'Package', 'Version'], capture_output=True, text=True)
    except FileNotFoundError:
        return None, f'{deb}: dpkg-deb not found (a Debian/Ubuntu tool; see docs/data_preparation.md)'
    fields = dict(line.split(': ', 1) for line in proc.stdout.splitlines() if ': ' in line)
    if proc.returncode != 0 or 'Package' not in fields:
        return None, f'{deb}: not a readable .deb ({proc.stderr.strip() or "no control fields"})'
    return (fields['Package'], fields.get('Version', '')), None


def _download(package, version, workdir):
    """``apt-get download package=version`` into ``workdir``: (.deb path, problem)."""
    spec = f'{package}={version}'
    problem = _run(['apt-get', 'download', spec], f'downloading {spec}', cwd=workdir)
    if problem:
        return None, (problem + '; run `apt-get update` first, or if the archive has no such version any '
                      'more, put that .deb into the cache\'s debs/ folder')
    debs = glob.glob(os.path.join(workdir, '*.deb'))
    if len(debs) != 1:
        return None, f'downloading {spec}: expected one .deb, apt-get left {len(debs)}'
    return debs[0], None


def _unpack(deb, package, version, dest):
    """Check that ``deb`` is ``package`` ``version`` and unpack it into ``dest`` atomically."""
    fields, problem = _deb_fields(deb)
    if problem:
        return problem
    if fields != (package, version):
        return f'{deb}: is {fields[0]} {fields[1]}, the manifest wants {package} {version}'
    partial = dest + PARTIAL_SUFFIX
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    problem = _run(['dpkg-deb', '-x', deb, partial], f'unpacking {deb}')
    if problem:
        shutil.rmtree(partial, ignore_errors=True)
        return problem
    os.rename(partial, dest)
    return None


def unpack_packages(cache, packages, download=True, log=_log):
    """``{(package, version): unpacked folder}`` for every pair of ``packages``.

    A pair already unpacked in the cache is used as it is; otherwise a ``.deb`` of it in
    ``<cache>/debs/`` is unpacked, or (``download``) one is fetched with ``apt-get download``.
    Every package that cannot be had is reported together in one :class:`InputError`.
    """
    roots, problems = {}, []
    for stale in glob.glob(os.path.join(cache, '.download-*')):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    for package, version in sorted(set(packages)):
        dest = os.path.join(cache, 'unpacked', package_dirname(package, version))
        if os.path.isdir(dest):
            roots[(package, version)] = dest
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        seeded = sorted(glob.glob(os.path.join(cache, 'debs', glob.escape(package_dirname(package, version))
                                               + '_*.deb')))
        if seeded:
            log(f'unpacking {seeded[0]}')
            problem = _unpack(seeded[0], package, version, dest)
        elif not download:
            problem = (f'{package} {version}: not in {cache} (unpacked/ or debs/) and downloading is off '
                       '(--offline)')
        else:
            log(f'downloading {package} {version} (apt-get download)')
            workdir = tempfile.mkdtemp(prefix='.download-', dir=cache)
            try:
                deb, problem = _download(package, version, workdir)
                if deb:
                    problem = _unpack(deb, package, version, dest)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        if problem:
            problems.append(problem)
        else:
            roots[(package, version)] = dest
    if problems:
        raise InputError(problems, header='Cannot get the Debian packages')
    return roots


# ----------------------------------------------------------------------------------- files
def check_files(photos, roots):
    """``[(photo, file path)]`` once every file exists and matches its SHA-256.

    ``roots``: ``{(package, version): unpacked folder}`` (see :func:`unpack_packages`). Every
    missing file and every checksum mismatch is named in one :class:`InputError`.
    """
    found, problems = [], []
    for photo in photos:
        path = os.path.join(roots[(photo.package, photo.version)], *photo.path.split('/'))
        if not os.path.isfile(path):
            problems.append(f'{photo.key}: {photo.package} {photo.version} has no file {photo.path}')
            continue
        actual = file_sha256(path)
        if actual != photo.sha256:
            problems.append(f'{photo.key}: {path} has sha256 {actual}, the manifest says {photo.sha256} '
                            '(the file changed)')
            continue
        found.append((photo, path))
    if problems:
        raise InputError(problems, header='Files do not match the manifest')
    return found
