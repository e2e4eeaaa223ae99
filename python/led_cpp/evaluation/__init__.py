"""Accuracy evaluation: the authors' protocol for pass@k on math benchmarks.

Protocol (LED_SPEC.md, "The authors' baseline" and "Measuring accuracy")
------------------------------------------------------------------------
* Prompt (:mod:`.prompts`): ``INSTRUCTION + "\\n" + question`` sent as one user message through
  the model's chat template.  A model without a chat template gets the plain completion prompt
  ``INSTRUCTION + "\\n" + question + "\\nAnswer:"``.
* Answer (:mod:`.answers`): the last complete ``\\boxed{...}`` (or ``\\fbox{...}``, balanced
  braces, also the ``\\boxed 5`` form) in the *answer region*: if the text contains the
  end-of-think marker, the region is everything after its first occurrence; otherwise it is
  the whole text (models that never think, and unfinished reasoning, are judged on what they
  wrote).  The marker is the model's own (``Model.reasoning_markers``) unless ``think_end`` or
  the config names one; where the decode loop closed the segment, the result's ``answer`` is
  the region.
* Two scores, as lm-eval's GSM8K reports them: *strict* (the headline, and the authors' rule)
  takes the last box only; *flexible* also takes, for GSM8K only, the last number of a region
  with no box (thousands commas removed).  The fallback is lenient: on small models it mostly
  counts numbers copied from the question.  Other datasets have no fallback, so both scores
  are the same.
* Checking (:mod:`.checker`): plain numbers are compared exactly (``2,125`` == ``2125.0``);
  anything else is compared for mathematical equality with math-verify (``parse`` /
  ``verify``), run with math-verify's own signal-based timeouts disabled, in a helper process
  (:mod:`.verify_worker`) that is killed and restarted when one check exceeds
  ``verify_timeout`` seconds (the check then counts as wrong).
* pass@1 is mean correctness over the n samples; pass@k (:mod:`.passk`) uses the unbiased
  estimator ``1 - C(n-c, k) / C(n, k)``, averaged over problems.

Modules: :mod:`.problems` (datasets and the problem selection), :mod:`.config_spec` (configs as
text), :mod:`.run_dir` (an out_dir's files and identity), :mod:`.batches` (batches, seeds,
records, runners), :mod:`.summary`, :mod:`.runs` (``evaluate``, ``compare``),
:mod:`.shards` (``--shard K/N`` and merging), :mod:`.ray` (a pool of Ray workers).
Every public name is importable from ``led_cpp.evaluation`` itself.
"""

from .answers import (
    DEFAULT_THINK_END,
    NUMBER_FALLBACK_DATASETS,
    answer_region,
    as_number,
    extract_answer,
    last_boxed,
    last_number,
    model_end_marker,
    result_answer_region,
)
from .batches import GREEDY_BATCH, ChunkRunner, EvalJob, LocalRunner, plan_chunks, problem_seed, run_chunk
from .checker import AnswerChecker, check_answer
from .config_spec import CONFIG_KEYS, ConfigSpec, parse_config_spec, resolve_config
from .passk import mean_pass_at_k, pass_at_k
from .problems import Dataset, Problem, load_dataset, select_problems
from .prompts import INSTRUCTION, PLAIN_ANSWER_CUE, build_prompt, user_message, uses_chat_template
from .ray import RayBackend
from .run_dir import (
    COMPARE_FILE,
    META_FILE,
    RUN_FORMAT,
    RUNS_FILE,
    SAMPLES_FILE,
    SUMMARY_FILE,
    RunMismatchError,
    check_out_dir,
    load_records,
    run_identity,
    write_json_atomic,
)
from .runs import RunPlan, check_run, compare, evaluate, model_name_of, plan_run
from .shards import Shard, ShardMergeError, merge_runs
from .summary import EvalSummary, format_table, summarize

__all__ = [
    "CONFIG_KEYS",
    "COMPARE_FILE",
    "DEFAULT_THINK_END",
    "GREEDY_BATCH",
    "INSTRUCTION",
    "META_FILE",
    "NUMBER_FALLBACK_DATASETS",
    "PLAIN_ANSWER_CUE",
    "RUNS_FILE",
    "RUN_FORMAT",
    "SAMPLES_FILE",
    "SUMMARY_FILE",
    "AnswerChecker",
    "ChunkRunner",
    "ConfigSpec",
    "Dataset",
    "EvalJob",
    "EvalSummary",
    "LocalRunner",
    "Problem",
    "RayBackend",
    "RunMismatchError",
    "RunPlan",
    "Shard",
    "ShardMergeError",
    "answer_region",
    "as_number",
    "build_prompt",
    "check_answer",
    "check_out_dir",
    "check_run",
    "compare",
    "evaluate",
    "extract_answer",
    "format_table",
    "last_boxed",
    "last_number",
    "load_dataset",
    "load_records",
    "mean_pass_at_k",
    "merge_runs",
    "model_end_marker",
    "model_name_of",
    "parse_config_spec",
    "pass_at_k",
    "plan_chunks",
    "plan_run",
    "problem_seed",
    "resolve_config",
    "result_answer_region",
    "run_chunk",
    "run_identity",
    "select_problems",
    "summarize",
    "user_message",
    "uses_chat_template",
    "write_json_atomic",
]
