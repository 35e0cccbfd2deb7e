"""The errors a lender's model can raise on the way in, and their messages (tests match these constants).

Every one is a ValueError: the command line turns a ValueError into exit code 2
and its message, so a bad model or card stops a run before anything is
written, with the file and what was expected instead of a library traceback.
"""

from __future__ import annotations


class AdapterError(ValueError):
    """A lender's model cannot be audited as it stands; the message names the file and what was expected."""


class ModelCardError(AdapterError):
    """The model card is missing or does not follow the card format."""


class ModelFileError(AdapterError):
    """The model file is missing, unreadable, not what its card says, or a format credit-audit never loads."""


class ModelMismatchError(AdapterError):
    """The model does not fit the schema or the data: unknown columns, a wrong width, probabilities outside [0, 1]."""


HOW_TO_SAVE = ("Save it instead with skops (scikit-learn: skops.io.dump), as native JSON (XGBoost: "
               "booster.save_model('model.json')), as text (LightGBM: booster.save_model('model.txt')), "
               "or as ONNX or TorchScript (torch.jit.save) for other models")
MSG_PICKLE = ("{file}: {why}; a pickle can run arbitrary code when it is loaded, so credit-audit never loads one. "
              + HOW_TO_SAVE)
WHY_SUFFIX = "the suffix {suffix} is a pickle format (pickle, joblib, torch.save)"
WHY_PROTOCOL = "the file starts with a pickle protocol byte (0x80)"
WHY_TORCH_SAVE = "the file is a torch.save archive (it holds {member}), not a TorchScript module"

MSG_NO_MODEL = "{file}: no such model file"
MSG_TOO_LARGE = "{file}: the model file is {size:,} bytes; expected at most {limit:,}"
MSG_NOT_REGULAR = "{file}: the {what} is {kind}, not a regular file; expected the file itself"
MSG_ZIP_BOMB = ("{file}: the archive's members unpack to {size:,} bytes from {packed:,}; expected at most {limit:,} "
                "(a model this large unpacked is refused before any loader expands it)")
MSG_UNREADABLE = "{file}: cannot read the model file ({reason})"
MSG_NOT_FORMAT = "{file}: the card {card} says type = {kind!r}, but the file is not {expected} ({reason})"
MSG_NO_LIBRARY = ("{file}: the card {card} says type = {kind!r}, which needs the Python package {package}; it is not "
                  "installed here ({reason}): install {package} in credit-audit's environment")
MSG_SHA256 = ("{file}: the file's SHA-256 is {actual}, but its card {card} says sha256 = {expected}: the model is "
              "not the one the card describes (replaced or altered)")
MSG_OBJECTIVE = ("{file}: the model's objective is {objective!r}; credit-audit audits a binary classifier whose "
                 "output is P(adverse outcome), so it expects {expected}")
MSG_UNTRUSTED = ("{file}: the skops file holds {types}, which credit-audit does not trust (only classes of "
                 "scikit-learn, NumPy and SciPy, and NumPy ufuncs, are trusted): loading it could run that code")
MSG_OUTPUT_SHAPE = ("{file}: the model returned an output of shape {shape} for {rows} rows; expected P(adverse) as "
                    "{rows} values, ({rows}, 1) or ({rows}, 2) with [output] adverse_column in the card")
MSG_NO_ADVERSE_COLUMN = ("{file}: the model returns 2 columns; the card {card} must say which holds P(adverse outcome): "
                         "[output] adverse_column = 0 or 1")
MSG_NO_ONNX_OUTPUT = ("{file}: none of the ONNX outputs {outputs} is a float probability tensor or a sequence of "
                      "maps (ZipMap); expected the model's probabilities among its outputs")
MSG_ONNX_INPUTS = ("{file}: the ONNX model's inputs are {inputs}; credit-audit feeds one float tensor of shape "
                   "(rows, columns), the card's [inputs] columns in order")
MSG_SCORING = ("the model {file} failed to score rows {first} to {last} ({reason}); expected it to read the card's "
               "{count} [inputs] columns as a float array of shape (rows, {count})")
MSG_FRAME_COLUMNS = "the model {file} reads the columns {missing}, which the data does not have (it has {have})"
MSG_NOT_NUMERIC = "the model {file} reads column {column!r} as numbers, but it holds {dtype} values"
MSG_MLP_FOLDER = ("{file}: a credit-audit-mlp model is the folder CreditModel.save writes (model.json and model.pt); "
                  "{reason}")
MSG_MLP_COLUMNS = ("{file}: the card {card} lists the inputs {card_columns}, but the saved model reads {model_columns}; "
                   "write the model's own columns, in its order")
MSG_MLP_THRESHOLD = ("{file}: the card {card} says [policy] threshold = {card_threshold}, but the saved model declines "
                     "at {model_threshold}; write the model's own threshold in the card")

MSG_UNKNOWN_COLUMNS = ("the card {card} lists [inputs] columns that are not features of the schema: {unknown}; "
                       "the schema's features are {known}")
MSG_WIDTH = "{file}: the model reads {width} inputs, but the card {card} lists {count} [inputs] columns"
MSG_NAMES = ("{file}: the model records its input names as {model_names}, but the card {card} lists {card_names}; "
             "expected the same names in the same order")
MSG_BAD_OUTPUT = ("the model {file} gave applicant {id} the probability {value} of the adverse outcome; "
                  "expected a number from 0 to 1 (a model returning raw scores or logits needs a sigmoid)")
MSG_ROWS = "the model {file} was given {frame} rows but {ids} applicant ids; expected one id per row"
