/* tools.domain._vehiclec: the hot paths of tools/domain/vehicle.py, in C.

   `construct_validated` and `construct_all` build pydantic models from values already validated
   (vehicle.py's `_python_construct_validated` and `_python_construct_all`, without a Python frame
   and four Python calls per instance). `vehicle_from_owned_vpic` turns one of ultravin's decodes
   into a `DecodedVehicle`.

   Every rule stays in vehicle.py, and its Python function (`_python_vehicle_from_owned_vpic`)
   stays the reference: which variables each field is read from, how a value is read (the readers
   of `_READ`, called once per value and memoised in `_MEMOS`), the field order, the suggestions.
   `configure` hands this module those tables once, at import; this module only looks values up in
   the decode's map and in the memos, calls a reader on a value it has not seen, and assembles
   the model as `construct_validated` does. A call it was not configured for (a value that is not
   a `str`, an argument of another type) goes to the Python function. The tests compare the two
   on every decode they make, and the accuracy test runs through this one.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* How one field of the model gets its value. */
enum kind {
    OWN_VIN = 0,         /* the `vin` argument */
    OWN_CHECK_DIGIT = 1, /* the `check_digit_valid` argument */
    OWN_SUGGESTIONS = 2, /* suggestions(vin, attributes["Suggested VIN"]) when that is not empty, else () */
    OWN_SOURCE = 3,      /* the `source` argument */
    OWN_RAW = 4,         /* `attributes` itself, its empty values deleted */
    ONE = 5,             /* read(value of one variable), memoised */
    GROUP = 6,           /* read(tuple of the values of several variables), memoised */
    ERRORS = 7,          /* read((code, text)), memoised, is (errors, blocking): the field is `errors` */
    VALID = 8,           /* the make field is not None and the errors do not block */
};

typedef struct {
    int kind;
    Py_ssize_t first; /* ONE: the variable's index; GROUP/ERRORS: where its `count` indices start */
    Py_ssize_t count;
    PyObject *memo;   /* ONE, GROUP, ERRORS: a BoundedMemo, value (or tuple of values) -> field value */
    PyObject *read;   /* ... the reader that fills it */
    Py_ssize_t limit; /* ... and its `limit`: full, it is emptied */
} Slot;

#define MAX_FIELDS 64
#define MAX_VARIABLES 64
#define MAX_INDICES 256

typedef struct {
    int configured;
    PyObject *cls; /* the model class */
    PyObject *names[MAX_FIELDS];
    Slot slots[MAX_FIELDS];
    Py_ssize_t n_fields;
    PyObject *variables[MAX_VARIABLES];
    Py_ssize_t n_variables;
    Py_ssize_t indices[MAX_INDICES]; /* GROUP/ERRORS variable indices */
    Py_ssize_t make_field;
    PyObject *shape;                 /* {field name: None} in field order, copied for each vehicle */
    PyObject *set_dict, *set_fields_set, *set_extra, *set_private; /* the slots' descriptors */
    PyObject *fields_set;
    PyObject *source_type;
    PyObject *suggested_variable; /* "Suggested VIN" */
    PyObject *suggestions;        /* suggestions(vin, suggested) -> tuple */
    PyObject *no_suggestions;     /* () */
    PyObject *fallback;           /* the Python function, for whatever this module does not serve */
    PyObject *absent;             /* "": an absent variable's value in the memos' keys */
    PyObject *no_args;            /* () for object.__new__ */
    PyTypeObject *base_model;     /* pydantic.BaseModel, whose slots the descriptors set */
} State;

static State S;

static PyObject *new_model(PyObject *cls, PyObject *fields, PyObject *names);

static int
set_slot(PyObject *descriptor, PyObject *instance, PyObject *value)
{
    return Py_TYPE(descriptor)->tp_descr_set(descriptor, instance, value);
}

/* memo[key] (a new reference), reading and storing it on a miss. */
static PyObject *
memo_get(Slot *slot, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(slot->memo, key);
    if (value != NULL) {
        return Py_NewRef(value);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    value = PyObject_CallOneArg(slot->read, key);
    if (value == NULL) {
        return NULL;
    }
    if (PyDict_GET_SIZE(slot->memo) >= slot->limit) { /* as `BoundedMemo.__missing__` */
        PyDict_Clear(slot->memo);
    }
    if (PyDict_SetItem(slot->memo, key, value) < 0) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
}

/* The key of a GROUP or ERRORS slot: the tuple of its variables' values (a new reference). */
static PyObject *
group_key(Slot *slot, PyObject *const *values)
{
    PyObject *key = PyTuple_New(slot->count);
    if (key == NULL) {
        return NULL;
    }
    for (Py_ssize_t j = 0; j < slot->count; j++) {
        PyTuple_SET_ITEM(key, j, Py_NewRef(values[S.indices[slot->first + j]]));
    }
    return key;
}

/* Delete the empty values of `attributes` among `names` (None: among all). 0, or -1. */
static int
drop_empty(PyObject *attributes, PyObject *names)
{
    if (names == Py_None) {
        PyObject *key, *value, *empty = NULL;
        Py_ssize_t pos = 0;
        while (PyDict_Next(attributes, &pos, &key, &value)) {
            int truth = PyObject_IsTrue(value);
            if (truth < 0 || (!truth && ((empty == NULL && (empty = PyList_New(0)) == NULL) ||
                                         PyList_Append(empty, key) < 0))) {
                Py_XDECREF(empty);
                return -1;
            }
        }
        for (Py_ssize_t i = 0; empty != NULL && i < PyList_GET_SIZE(empty); i++) {
            if (PyDict_DelItem(attributes, PyList_GET_ITEM(empty, i)) < 0) {
                Py_DECREF(empty);
                return -1;
            }
        }
        Py_XDECREF(empty);
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        PyObject *value = PyDict_GetItemWithError(attributes, name);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            continue;
        }
        int truth = PyObject_IsTrue(value);
        if (truth < 0 || (!truth && PyDict_DelItem(attributes, name) < 0)) {
            return -1;
        }
    }
    return 0;
}

/* vehicle_from_owned_vpic(vin, attributes, check_digit_valid, source, empty_variables=None) */
static PyObject *
vehicle_from_owned_vpic(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!S.configured || nargs < 4 || nargs > 5) {
        return PyObject_Vectorcall(S.fallback, args, nargs, NULL); /* Python raises its TypeError */
    }
    PyObject *vin = args[0], *attributes = args[1], *check_digit_valid = args[2], *source = args[3];
    PyObject *empty_variables = nargs == 5 ? args[4] : Py_None;
    if (!PyUnicode_CheckExact(vin) || !PyDict_CheckExact(attributes) || !PyBool_Check(check_digit_valid) ||
        (PyObject *)Py_TYPE(source) != S.source_type ||
        (empty_variables != Py_None && !PyTuple_CheckExact(empty_variables))) {
        return PyObject_Vectorcall(S.fallback, args, nargs, NULL);
    }
    PyObject *values[MAX_VARIABLES], *read[MAX_FIELDS] = {NULL};
    PyObject *result = NULL, *blocking = NULL, *suggested, *suggestions = NULL, *fields = NULL;
    Py_ssize_t held = 0;
    int truth, blocks;
    /* The variables' values ("" for an absent one), held: a reader is Python code. */
    for (; held < S.n_variables; held++) {
        PyObject *value = PyDict_GetItemWithError(attributes, S.variables[held]);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                goto done;
            }
            value = S.absent;
        }
        else if (!PyUnicode_CheckExact(value)) { /* a list, or another type: read the Python way */
            for (Py_ssize_t i = 0; i < held; i++) {
                Py_DECREF(values[i]);
            }
            return PyObject_Vectorcall(S.fallback, args, nargs, NULL);
        }
        values[held] = Py_NewRef(value);
    }
    for (Py_ssize_t f = 0; f < S.n_fields; f++) {
        Slot *slot = &S.slots[f];
        PyObject *key, *got;
        switch (slot->kind) {
        case ONE:
            if ((read[f] = memo_get(slot, values[slot->first])) == NULL) {
                goto done;
            }
            break;
        case GROUP:
        case ERRORS:
            if ((key = group_key(slot, values)) == NULL) {
                goto done;
            }
            got = memo_get(slot, key);
            Py_DECREF(key);
            if (got == NULL) {
                goto done;
            }
            if (slot->kind == GROUP) {
                read[f] = got; /* the field's value itself */
                break;
            }
            if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 2) {
                Py_DECREF(got);
                PyErr_SetString(PyExc_TypeError, "the errors reader must return (errors, blocking)");
                goto done;
            }
            read[f] = Py_NewRef(PyTuple_GET_ITEM(got, 0));
            blocking = Py_NewRef(PyTuple_GET_ITEM(got, 1));
            Py_DECREF(got);
            break;
        default:
            break;
        }
    }
    /* The VIN's own fields: suggestions are read before the empty values go. */
    suggested = PyDict_GetItemWithError(attributes, S.suggested_variable);
    if (suggested == NULL && PyErr_Occurred()) {
        goto done;
    }
    truth = suggested == NULL ? 0 : PyObject_IsTrue(suggested);
    if (truth < 0) {
        goto done;
    }
    if (truth) {
        PyObject *call_args[2] = {vin, suggested};
        if ((suggestions = PyObject_Vectorcall(S.suggestions, call_args, 2, NULL)) == NULL) {
            goto done;
        }
    }
    else {
        suggestions = Py_NewRef(S.no_suggestions);
    }
    blocks = blocking == NULL ? 0 : PyObject_IsTrue(blocking);
    if (blocks < 0 || drop_empty(attributes, empty_variables) < 0 || (fields = PyDict_Copy(S.shape)) == NULL) {
        goto done;
    }
    /* Every field, in field order: `fields` already holds the names in that order. */
    for (Py_ssize_t f = 0; f < S.n_fields; f++) {
        PyObject *value;
        switch (S.slots[f].kind) {
        case OWN_VIN:
            value = vin;
            break;
        case OWN_CHECK_DIGIT:
            value = check_digit_valid;
            break;
        case OWN_SUGGESTIONS:
            value = suggestions;
            break;
        case OWN_SOURCE:
            value = source;
            break;
        case OWN_RAW:
            value = attributes;
            break;
        case VALID:
            value = (read[S.make_field] != Py_None && !blocks) ? Py_True : Py_False;
            break;
        default:
            value = read[f];
        }
        if (PyDict_SetItem(fields, S.names[f], value) < 0) {
            goto done;
        }
    }
    result = new_model(S.cls, fields, S.fields_set);
done:
    for (Py_ssize_t f = 0; f < S.n_fields; f++) {
        Py_XDECREF(read[f]);
    }
    Py_XDECREF(blocking);
    Py_XDECREF(suggestions);
    Py_XDECREF(fields);
    for (Py_ssize_t i = 0; i < held; i++) {
        Py_DECREF(values[i]);
    }
    return result;
}

/* object.__new__(cls) with BaseModel's four slots set: what `construct_validated` documents. */
static PyObject *
new_model(PyObject *cls, PyObject *fields, PyObject *names)
{
    PyObject *instance = PyBaseObject_Type.tp_new((PyTypeObject *)cls, S.no_args, NULL);
    if (instance == NULL) {
        return NULL;
    }
    if (set_slot(S.set_dict, instance, fields) < 0 || set_slot(S.set_fields_set, instance, names) < 0 ||
        set_slot(S.set_extra, instance, Py_None) < 0 || set_slot(S.set_private, instance, Py_None) < 0) {
        Py_DECREF(instance);
        return NULL;
    }
    return instance;
}

static int
check_construct_args(PyObject *cls, PyObject *names)
{
    if (!S.configured) {
        PyErr_SetString(PyExc_RuntimeError, "_vehiclec is not configured");
        return -1;
    }
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, S.base_model) || !PySet_CheckExact(names)) {
        PyErr_SetString(PyExc_TypeError, "construct_validated(cls, fields, names): a model class, a dict and a set");
        return -1;
    }
    return 0;
}

/* construct_validated(cls, fields, names) */
static PyObject *
construct_validated(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "construct_validated(cls, fields, names) takes three arguments");
        return NULL;
    }
    if (check_construct_args(args[0], args[2]) < 0) {
        return NULL;
    }
    if (!PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "construct_validated: fields must be a dict");
        return NULL;
    }
    return new_model(args[0], args[1], args[2]);
}

/* construct_all(cls, many, names) */
static PyObject *
construct_all(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "construct_all(cls, many, names) takes three arguments");
        return NULL;
    }
    PyObject *cls = args[0], *names = args[2];
    if (check_construct_args(cls, names) < 0) {
        return NULL;
    }
    PyObject *iterator = PyObject_GetIter(args[1]);
    if (iterator == NULL) {
        return NULL;
    }
    PyObject *built = PyList_New(0), *fields;
    if (built == NULL) {
        Py_DECREF(iterator);
        return NULL;
    }
    while ((fields = PyIter_Next(iterator)) != NULL) {
        PyObject *instance = NULL;
        if (!PyDict_Check(fields)) {
            PyErr_SetString(PyExc_TypeError, "construct_all: each item of many must be a dict of fields");
        }
        else {
            instance = new_model(cls, fields, names);
        }
        Py_DECREF(fields);
        if (instance == NULL || PyList_Append(built, instance) < 0) {
            Py_XDECREF(instance);
            Py_DECREF(iterator);
            Py_DECREF(built);
            return NULL;
        }
        Py_DECREF(instance);
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        Py_DECREF(built);
        return NULL;
    }
    return built;
}

static int
index_of(PyObject *variables, PyObject *name, Py_ssize_t *index)
{
    Py_ssize_t found = PySequence_Index(variables, name);
    if (found < 0) {
        return -1;
    }
    *index = found;
    return 0;
}

static PyObject *
configure_error(const char *message)
{
    PyErr_SetString(PyExc_ValueError, message);
    return NULL;
}

/* configure(cls, plan, variables, descriptors, fields_set, source_type, suggested_variable,
             suggestions, fallback)

   plan: one (field name, kind, variables, memo, read) per model field, in field order, where
   `variables` is a tuple of variable names (ONE: one; GROUP: several; ERRORS: code and text;
   VALID: the make field's name; the VIN's own fields: none), and `memo` (a BoundedMemo) and
   `read` are None but for ONE, GROUP and ERRORS. descriptors: the setters of BaseModel's four
   slots. */
static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *cls, *plan, *variables, *descriptors, *fields_set, *source_type, *suggested_variable,
        *suggestions, *fallback;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!UOO:configure", &PyType_Type, &cls, &PyTuple_Type, &plan,
                          &PyTuple_Type, &variables, &PyTuple_Type, &descriptors, &PySet_Type, &fields_set,
                          &PyType_Type, &source_type, &suggested_variable, &suggestions, &fallback)) {
        return NULL;
    }
    if (S.configured) {
        PyErr_SetString(PyExc_RuntimeError, "_vehiclec is configured once");
        return NULL;
    }
    Py_ssize_t n_fields = PyTuple_GET_SIZE(plan), n_variables = PyTuple_GET_SIZE(variables);
    if (n_fields > MAX_FIELDS || n_variables > MAX_VARIABLES) {
        return configure_error("too many fields or variables");
    }
    if (PyTuple_GET_SIZE(descriptors) != 4) {
        return configure_error("four descriptors are needed");
    }
    for (Py_ssize_t d = 0; d < 4; d++) {
        if (Py_TYPE(PyTuple_GET_ITEM(descriptors, d))->tp_descr_set == NULL) {
            return configure_error("a descriptor cannot set its slot");
        }
    }
    for (Py_ssize_t i = 0; i < n_variables; i++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(variables, i))) {
            return configure_error("variable names must be str");
        }
    }
    PyObject *base_model = PyObject_GetAttrString(PyTuple_GET_ITEM(descriptors, 0), "__objclass__");
    if (base_model == NULL) {
        return NULL;
    }
    if (!PyType_Check(base_model) || !PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)base_model)) {
        Py_DECREF(base_model);
        return configure_error("the model class does not have the descriptors' slots");
    }
    PyObject *shape = PyDict_New();
    if (shape == NULL) {
        Py_DECREF(base_model);
        return NULL;
    }
    Py_ssize_t used = 0, make_field = -1;
    int own_seen[OWN_RAW + 1] = {0};
    PyObject *make_name = NULL;
    for (Py_ssize_t f = 0; f < n_fields; f++) {
        PyObject *name, *names, *memo, *read;
        int kind;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(plan, f), "UiO!OO:plan entry", &name, &kind, &PyTuple_Type,
                              &names, &memo, &read)) {
            goto fail;
        }
        if (kind < OWN_VIN || kind > VALID) {
            configure_error("unknown kind of field");
            goto fail;
        }
        if (PyDict_Contains(shape, name) != 0 || PyDict_SetItem(shape, name, Py_None) < 0) {
            if (!PyErr_Occurred()) {
                configure_error("a field named twice");
            }
            goto fail;
        }
        Slot *slot = &S.slots[f];
        slot->kind = kind;
        S.names[f] = Py_NewRef(name);
        Py_ssize_t count = PyTuple_GET_SIZE(names);
        if (kind <= OWN_RAW) {
            if (own_seen[kind]++ || count != 0) {
                configure_error("each of the VIN's own fields once, with no variables");
                goto fail;
            }
        }
        else if (kind == VALID) {
            if (count != 1) {
                configure_error("VALID names the make field");
                goto fail;
            }
            make_name = PyTuple_GET_ITEM(names, 0);
        }
        else {
            if (!PyDict_Check(memo) || !PyCallable_Check(read)) {
                PyErr_SetString(PyExc_TypeError, "a field read from variables needs a memo (dict) and a reader");
                goto fail;
            }
            if (count < 1 || (kind == ONE && count != 1) || (kind == ERRORS && count != 2) ||
                used + count > MAX_INDICES) {
                configure_error("wrong number of variables for a field");
                goto fail;
            }
            PyObject *limit = PyObject_GetAttrString(memo, "limit");
            if (limit == NULL) {
                goto fail;
            }
            slot->limit = PyLong_AsSsize_t(limit);
            Py_DECREF(limit);
            if (slot->limit < 1) {
                if (!PyErr_Occurred()) {
                    configure_error("a memo's limit must be positive");
                }
                goto fail;
            }
            slot->memo = Py_NewRef(memo);
            slot->read = Py_NewRef(read);
            slot->count = count;
            if (kind == ONE) {
                if (index_of(variables, PyTuple_GET_ITEM(names, 0), &slot->first) < 0) {
                    goto fail;
                }
            }
            else {
                slot->first = used;
                for (Py_ssize_t j = 0; j < count; j++) {
                    if (index_of(variables, PyTuple_GET_ITEM(names, j), &S.indices[used++]) < 0) {
                        goto fail;
                    }
                }
            }
        }
    }
    for (int k = 0; k <= OWN_RAW; k++) {
        if (!own_seen[k]) {
            configure_error("the plan lacks one of the VIN's own fields");
            goto fail;
        }
    }
    /* Every vehicle gets every field: the plan names each field of the set, and nothing else. */
    if (PySet_GET_SIZE(fields_set) != n_fields) {
        configure_error("the plan and the fields set name different fields");
        goto fail;
    }
    for (Py_ssize_t f = 0; f < n_fields; f++) {
        int known = PySet_Contains(fields_set, S.names[f]);
        if (known <= 0) {
            if (known == 0) {
                configure_error("the plan and the fields set name different fields");
            }
            goto fail;
        }
    }
    for (Py_ssize_t f = 0; make_name != NULL && f < n_fields; f++) {
        if (S.slots[f].kind == ONE && PyUnicode_Compare(S.names[f], make_name) == 0) {
            make_field = f;
        }
    }
    if (make_name != NULL && make_field < 0) {
        configure_error("VALID names no field read from one variable");
        goto fail;
    }
    if ((S.absent = PyUnicode_FromString("")) == NULL || (S.no_suggestions = PyTuple_New(0)) == NULL ||
        (S.no_args = PyTuple_New(0)) == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n_variables; i++) {
        S.variables[i] = Py_NewRef(PyTuple_GET_ITEM(variables, i));
    }
    S.n_fields = n_fields;
    S.n_variables = n_variables;
    S.make_field = make_field;
    S.shape = shape;
    S.base_model = (PyTypeObject *)base_model; /* the reference taken above */
    S.cls = Py_NewRef(cls);
    S.set_dict = Py_NewRef(PyTuple_GET_ITEM(descriptors, 0));
    S.set_fields_set = Py_NewRef(PyTuple_GET_ITEM(descriptors, 1));
    S.set_extra = Py_NewRef(PyTuple_GET_ITEM(descriptors, 2));
    S.set_private = Py_NewRef(PyTuple_GET_ITEM(descriptors, 3));
    S.fields_set = Py_NewRef(fields_set);
    S.source_type = Py_NewRef(source_type);
    S.suggested_variable = Py_NewRef(suggested_variable);
    S.suggestions = Py_NewRef(suggestions);
    S.fallback = Py_NewRef(fallback);
    S.configured = 1;
    Py_RETURN_NONE;
fail:
    /* Configured once, at import: a failure is a bug in vehicle.py, and importing vehicle.py fails with
       it (what the slots took before is not given back). */
    Py_DECREF(shape);
    Py_DECREF(base_model);
    return NULL;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "Hand over the tables of tools.domain.vehicle (once)."},
    {"vehicle_from_owned_vpic", (PyCFunction)(void (*)(void))vehicle_from_owned_vpic, METH_FASTCALL,
     "tools.domain.vehicle.vehicle_from_owned_vpic, in C."},
    {"construct_validated", (PyCFunction)(void (*)(void))construct_validated, METH_FASTCALL,
     "tools.domain.vehicle.construct_validated, in C."},
    {"construct_all", (PyCFunction)(void (*)(void))construct_all, METH_FASTCALL,
     "tools.domain.vehicle.construct_all, in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_vehiclec", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__vehiclec(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    /* The kinds of field, for `configure`'s plan. */
    if (PyModule_AddIntConstant(m, "OWN_VIN", OWN_VIN) < 0 ||
        PyModule_AddIntConstant(m, "OWN_CHECK_DIGIT", OWN_CHECK_DIGIT) < 0 ||
        PyModule_AddIntConstant(m, "OWN_SUGGESTIONS", OWN_SUGGESTIONS) < 0 ||
        PyModule_AddIntConstant(m, "OWN_SOURCE", OWN_SOURCE) < 0 || PyModule_AddIntConstant(m, "OWN_RAW", OWN_RAW) < 0 ||
        PyModule_AddIntConstant(m, "ONE", ONE) < 0 || PyModule_AddIntConstant(m, "GROUP", GROUP) < 0 ||
        PyModule_AddIntConstant(m, "ERRORS", ERRORS) < 0 || PyModule_AddIntConstant(m, "VALID", VALID) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
