"""One way to read settings for every stage: parse once, fill unset flags from the stage's preset,
check every rule on the resolved values, and report any problem as a usage error (exit status 2).

A flag whose default lives in the preset table is declared with `default=None` and a help text that
ends in "(preset)"; `fill_from_preset` then sets it from `options.presets.preset`. Rules are data:
`check_rules(parser, args, RULES)` names the flag, the accepted range and the value found.
"""
import argparse

from options.presets import preset


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default in --help when it has one (preset-held flags say "(preset)" instead)."""

    def _get_help_string(self, action):
        if action.default in (None, "", argparse.SUPPRESS) or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def make_parser(description):
    return argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter)


def fill_from_preset(args, settings):
    """Set every attribute of `args` that is None and that `settings` holds."""
    for key, value in settings.items():
        if key in vars(args) and getattr(args, key) is None:
            setattr(args, key, value)


def resolve_preset(parser, args, stage, dataset, protocol):
    """Fill `args` from the preset of (stage, dataset, protocol); an unknown combination is a usage error.

    Returns the preset dict."""
    try:
        settings = preset(stage, dataset, protocol)
    except ValueError as exc:
        parser.error(str(exc))
    fill_from_preset(args, settings)
    return settings


# (attribute, test, wording of the accepted range); the flag is derived from the attribute's name.
def at_least(low):
    return (lambda v: v >= low), f"at least {low}"


def positive():
    return (lambda v: v > 0), "positive"


def in_unit(closed_top=True):
    if closed_top:
        return (lambda v: 0.0 <= v <= 1.0), "in [0, 1]"
    return (lambda v: 0.0 <= v < 1.0), "in [0, 1)"


def check_rules(parser, args, rules):
    """`parser.error` (exit 2) listing every value of `args` outside its rule, before any work starts."""
    problems = []
    for name, (test, wording) in rules.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if not all(test(v) for v in values):
            problems.append(f"{flag_name(name)} must be {wording}, found {value}")
    if problems:
        parser.error("; ".join(problems))


def flag_name(attribute):
    """The command-line flag of an options attribute: 'batch_size' -> '--batch-size'."""
    return "--" + attribute.replace("_", "-")
