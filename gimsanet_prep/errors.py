"""The errors of data preparation: every problem found is collected and reported in one message."""


class DataPreparationError(Exception):
    """Base class: the scripts turn it into one message on stderr and exit status 2."""


def format_problems(header, problems, limit=100):
    """``header (N problems):`` then one ``  - problem`` line each (at most ``limit``)."""
    lines = [f'{header} ({len(problems)} problem{"s" if len(problems) != 1 else ""}):']
    lines += [f'  - {p}' for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f'  ... and {len(problems) - limit} more')
    return '\n'.join(lines)


class InputError(DataPreparationError):
    """Missing, unpaired or unreadable inputs; ``problems`` lists every one of them."""

    def __init__(self, problems, header='Invalid dataset inputs'):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__(format_problems(header, self.problems))


class VerificationError(DataPreparationError):
    """An LMDB failed verification; ``problems`` lists every failed check."""

    def __init__(self, path, problems):
        self.path = path
        self.problems = list(problems)
        super().__init__(format_problems(f'LMDB {path} failed verification (rebuild it: run the preparation '
                                         'script again with --overwrite)', self.problems))
