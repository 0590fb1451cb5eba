"""Every document the repository cites is in the repository, with the cited section.

The tracked ``.py``, ``.yml`` and ``.md`` files are scanned for

* ``docs/<name>.md`` and ``README.md`` (root-relative), optionally with ``#anchor``, or followed by
  ``section "Title"``;
* relative Markdown links ``[text](target)`` in ``.md`` files (relative to that file), optionally
  with ``#anchor``; ``(#anchor)`` alone points into the same file.

Each must name an existing file, and a given anchor or title must be a heading of that file (anchors
are GitHub's heading slugs). No file may point at the design notes outside the repository that the
docs were written from, nor cite a numbered "spec section" that no file in the repository has.
"""
import functools
import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS_FILE = os.path.relpath(os.path.abspath(__file__), REPO).replace(os.sep, '/')
TEXT_SUFFIXES = ('.py', '.yml', '.yaml', '.md')
# folders a checkout may hold that are outputs, not sources (only used without git)
NOT_SOURCES = {'experiments', 'results', 'datasets', 'tb_logger', 'build', 'dist', '__pycache__'}

# root-relative docs/x.md or README.md (not some/folder/README.md), with an optional #anchor
DOC_REF = re.compile(r'(?<![\w./-])((?:docs/[\w.-]+|README)\.md)\b(?:#([\w-]+))?')
# docs/x.md section "Title" (also with a comma, or single quotes)
SECTION_REF = re.compile(r'''(?<![\w./-])((?:docs/[\w.-]+|README)\.md),?\s+section\s+["']([^"'\n]+)["']''')
MD_LINK = re.compile(r'\[[^\]\n]*\]\(([^)\s]+)\)')
HEADING = re.compile(r'^(#{1,6})\s+(.+?)\s*#*\s*$')
FENCE = re.compile(r'^\s*(```|~~~)')
# built from pieces so that this file does not match itself
OUTSIDE_REPO = re.compile(re.escape('shared' + '/docs') + '|' + re.escape('../' + 'shared'))
NUMBERED_SPEC_SECTION = re.compile(r'\bspec\W{0,3}(?:sections?\s+\d|' + '\u00a7' + ')', re.IGNORECASE)


def tracked_text_files():
    """Repository-relative paths of the tracked text files (a directory walk where git is missing)."""
    try:
        out = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, check=True).stdout
        names = [n for n in out.decode('utf-8').split('\0') if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for root, dirs, files in os.walk(REPO):
            dirs[:] = [d for d in dirs if not d.startswith('.') and d not in NOT_SOURCES
                       and not d.endswith('.egg-info')]
            names += [os.path.relpath(os.path.join(root, f), REPO).replace(os.sep, '/') for f in files]
    return sorted(n for n in names if n.endswith(TEXT_SUFFIXES) and os.path.isfile(os.path.join(REPO, n)))


def slugify(title):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r'[^\w\- ]', '', title.strip().lower()).replace(' ', '-')


@functools.lru_cache(maxsize=None)
def headings(path):
    """``(titles, anchors)`` of the Markdown file ``path`` (headings inside code fences excluded)."""
    titles, anchors, seen = set(), set(), {}
    in_fence = False
    with open(path, encoding='utf-8') as f:
        for line in f:
            if FENCE.match(line):
                in_fence = not in_fence
                continue
            match = None if in_fence else HEADING.match(line.rstrip('\n'))
            if match:
                title = match.group(2)
                slug = slugify(title)
                count = seen.get(slug, 0)  # GitHub numbers repeated headings: x, x-1, x-2
                seen[slug] = count + 1
                titles.add(title.replace('`', ''))
                anchors.add(slug if count == 0 else f'{slug}-{count}')
    return titles, anchors


def _check_target(where, target_rel, anchor=None, title=None):
    """A problem message, or None when ``target_rel`` exists and has the anchor / heading asked for."""
    path = os.path.normpath(os.path.join(REPO, target_rel))
    if not path.startswith(REPO + os.sep) or not os.path.isfile(path):
        return f'{where}: {target_rel} does not exist in the repository'
    if anchor is None and title is None:
        return None
    if not path.endswith('.md'):
        return f'{where}: {target_rel} is not a Markdown file, so it has no section'
    titles, anchors = headings(path)
    if anchor is not None and anchor not in anchors:
        return f'{where}: {target_rel} has no heading with anchor #{anchor}'
    if title is not None and title not in titles:
        return f'{where}: {target_rel} has no heading "{title}"'
    return None


def reference_problems(rel, text):
    """``(problems, targets)`` for the text of the repository file ``rel``."""
    problems, targets = [], []
    for number, line in enumerate(text.splitlines(), 1):
        where = f'{rel}:{number}'
        for match in DOC_REF.finditer(line):
            targets.append(match.group(1))
            problems.append(_check_target(where, match.group(1), anchor=match.group(2)))
        for match in SECTION_REF.finditer(line):
            problems.append(_check_target(where, match.group(1), title=match.group(2)))
        if rel.endswith('.md'):
            for match in MD_LINK.finditer(line):
                link = match.group(1)
                if re.match(r'[a-z][a-z0-9+.-]*:', link, re.IGNORECASE):  # http:, https:, mailto:
                    continue
                file_part, _, anchor = link.partition('#')
                target = os.path.join(os.path.dirname(rel), file_part) if file_part else rel
                targets.append(os.path.normpath(target).replace(os.sep, '/'))
                problems.append(_check_target(where, target, anchor=anchor or None))
        if OUTSIDE_REPO.search(line):
            problems.append(f'{where}: points outside the repository: {line.strip()}')
        if NUMBERED_SPEC_SECTION.search(line):
            problems.append(f'{where}: cites a numbered spec section; name a docs/ file and heading instead')
    return [p for p in problems if p], targets


@pytest.fixture(scope='module')
def scan():
    """Problems and cited targets over every tracked text file except this one (which holds bad
    examples on purpose, in the tests of the checker below)."""
    problems, targets = [], []
    for rel in tracked_text_files():
        if rel == THIS_FILE:
            continue
        with open(os.path.join(REPO, rel), encoding='utf-8') as f:
            file_problems, file_targets = reference_problems(rel, f.read())
        problems += file_problems
        targets += file_targets
    return problems, targets


def test_every_cited_document_and_section_exists(scan):
    problems, _ = scan
    assert not problems, 'dead document references:\n' + '\n'.join(problems)


def test_the_scan_sees_the_references(scan):
    """Guards the scanner itself: the code cites both docs, so a regex that matches nothing fails here."""
    _, targets = scan
    for doc in ('docs/gimsanet-spec.md', 'docs/evaluation.md', 'README.md'):
        assert targets.count(doc) >= 3, f'{doc} cited {targets.count(doc)} times'


@pytest.mark.parametrize('title, anchor', [
    ('Compatibility with basicsr 1.4.2', 'compatibility-with-basicsr-142'),
    ('Multi-scale attention block (MSAB)', 'multi-scale-attention-block-msab'),
    ('Gray kernels (not released)', 'gray-kernels-not-released'),
    ('`grad_mode` values', 'grad_mode-values'),
])
def test_slugify_follows_github(title, anchor):
    assert slugify(title) == anchor


def test_checker_reports_dead_references():
    good = ('see docs/evaluation.md#standard-awgn-protocol, README.md#evaluation-protocol and '
            'docs/gimsanet-spec.md, section "Gradient branch"')
    assert reference_problems('x.py', good)[0] == []
    bad = {
        'docs/nothere.md': 'does not exist',
        'docs/evaluation.md#no-such-heading': 'no heading with anchor',
        'docs/gimsanet-spec.md section "No such title"': 'no heading "No such title"',
        '../' + 'shared' + '/docs/gimsanet-spec.md': 'outside the repository',
        'the spec section 3': 'numbered spec section',
    }
    for text, message in bad.items():
        problems, _ = reference_problems('x.py', text)
        assert len(problems) == 1 and message in problems[0], (text, problems)


def test_checker_follows_relative_markdown_links():
    good = '[x](evaluation.md#real-noise) [y](../README.md) [z](https://x.org/a.md)'
    assert reference_problems('docs/a.md', good)[0] == []
    problems, _ = reference_problems('docs/a.md', '[x](evaluation.md#nope) [y](missing.md) [z](#nope)')
    assert len(problems) == 3
    assert 'docs/a.md does not exist' in problems[2]  # a same-file anchor needs the file itself


# ------------------------------------------------------------------------------ the README itself
README_SECTIONS = ('The two commands', 'Install', 'Train', 'Test', 'Denoise your own photos', 'Compare denoisers',
                   'Data preparation', 'Results', 'How the package is organised')
RESULTS_MARKERS = ('<!-- results:begin -->', '<!-- results:end -->')


def readme_text():
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
        return f.read()


def test_readme_is_a_short_users_guide():
    """A user's guide: the sections a user needs, under 350 lines; reports and long explanations
    live in docs/ (linked from it)."""
    text = readme_text()
    assert len(text.splitlines()) < 350
    titles, _ = headings(os.path.join(REPO, 'README.md'))
    assert [s for s in README_SECTIONS if s not in titles] == []
    for doc in ('docs/denoise.md', 'docs/training.md', 'docs/benchmark.md', 'docs/export.md', 'docs/race.md'):
        assert f']({doc}' in text, f'the README does not link {doc}'


def test_readme_results_markers_enclose_the_results_section():
    """scripts/cpu_recipe/results_table.py --readme replaces what lies between the two markers."""
    text = readme_text()
    begin, end = RESULTS_MARKERS
    assert text.count(begin) == 1 and text.count(end) == 1
    section = text[text.index('\n## Results\n'):]
    section = section[:section.index('\n## ', 1)]
    assert section.index(begin) < section.index(end)


def _fenced_command(text, lead):
    """The first line of the first bash block after the paragraph starting with ``lead``."""
    rest = text[text.index(lead):]
    block = rest[rest.index('```bash\n') + len('```bash\n'):]
    return block[:block.index('\n')]


def test_readme_test_command_is_what_ci_runs():
    """Command 2 of the README, step by step, is what .ci/run does on a clean clone."""
    steps = [s.strip() for s in _fenced_command(readme_text(), '**2. Set up and run the tests.**').split('&&')]
    with open(os.path.join(REPO, '.ci', 'run'), encoding='utf-8') as f:
        ci_lines = [line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')]
    assert steps[-1] == 'python -m pytest'
    for step in steps:
        assert any(line == step or line.startswith(step + ' ') for line in ci_lines), f'.ci/run does not run: {step}'


def test_readme_demo_command_names_files_that_exist():
    command = _fenced_command(readme_text(), '**1. Set up and run the embedded demo.**')
    assert 'pip install -e .' in command and 'basicsr train -opt' in command
    for path in re.findall(r'(?:scripts|options)/[\w/.-]+', command):
        assert os.path.isfile(os.path.join(REPO, path)), path
