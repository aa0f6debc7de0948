#!/usr/bin/env bash
# Build the teacher dataset (datasets/teacher) from nothing, with one command:
#   bash scripts/build_teacher_dataset.sh [WORKERS]
# 1. generate: a seeded plan of ~7,000 crystals (every teacher element in fcc/bcc/hcp; the real MP structures
#    of ../shared/data; charge-balanced decorations of common, AFLOW and real prototypes; GGA+U metals with O
#    and F), each relaxed briefly by CHGNet 0.3.0, with rattles, strains, MD snapshots, vacancies and slabs
#    (runs/teacher/structures, not committed);
# 2. teach: every structure labelled by CHGNet 0.3.0 (fidelity pbe_chgnet, raw MP GGA/GGA+U scale) and by
#    CHGNet r2SCAN (fidelity r2scan_chgnet, MP r2SCAN scale), split by composition group (datasets/teacher).
# 3. the polymorph supplement (datasets/teacher-polymorphs): 500 binary compositions of common elements, each
#    in every common prototype that fits its charges, relaxed for up to 100 steps, with three strains each,
#    generated (runs/teacher-polymorphs/structures) and labelled the same way, with the same split rule.
# 4. the tetrahedral supplement (datasets/teacher-tetrahedral): 500 octet-rule alloys of the sp3 family (C, Si,
#    Ge, Sn with B/Al/Ga/In + N/P/As/Sb and Be/Mg/Zn/Cd + O/S/Se/Te), every other one holding Si and C, each in
#    zincblende and wurtzite stacking, relaxed for up to 100 steps, with three strains each; none of the
#    compositions the checks judge (SiC, MgO...). Generated (runs/teacher-tetrahedral/structures) and labelled
#    the same way, with the same split rule.
# 5. the mixed-crystal supplement (datasets/teacher-solid-solutions): 200 compositions of 50/50 mixed crystals
#    of rocksalt, antifluorite and corundum (one sublattice shared by two isovalent elements), each in two cells,
#    first the 46 that share a sublattice with a judged binary (AlGaO3, NaKCl2...), relaxed for up to 100 steps,
#    with three strains each. Generated (runs/teacher-solid-solutions/structures) and labelled the same way.
# 6. the equation-of-state supplement (datasets/teacher-eos): every teacher element in fcc, bcc and hcp (and C,
#    Si, Ge, Sn in diamond) and the 46 mixed crystals next to a judged binary, relaxed for up to 100 steps, each
#    also scaled isotropically to 0.88, 0.92, 0.96, 1.04, 1.08 and 1.12 times its volume (config type eos).
#    Generated (runs/teacher-eos/structures) and labelled the same way.
# Both steps are resumable: rerun after an interruption and they continue where they stopped. To spread the
# work over N machines, run each step with --part i/N on machine i, copy the folders together and run
# `umfp data manifest FOLDER`. Needs the teachers extra: pip install -e '.[teachers]'.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${1:-2}"
frames="${UMFP_SHARED_DATA:-../shared/data}/frames"
umfp data generate runs/teacher/structures --frames-dir "$frames" --seed 0 --workers "$workers"
umfp data teach runs/teacher/structures datasets/teacher \
    --teacher pbe_chgnet=chgnet:0.3.0 --teacher r2scan_chgnet=chgnet:r2scan --seed 0 --workers "$workers"
umfp data generate runs/teacher-polymorphs/structures --frames-dir "$frames" --seed 11 --num-decorated 0 \
    --num-u-focus 0 --elements --max-real-structures 0 --num-polymorph-compositions 500 --relax-steps 100 \
    --strains 3 --jobs-per-shard 20 --workers "$workers"
umfp data teach runs/teacher-polymorphs/structures datasets/teacher-polymorphs \
    --teacher pbe_chgnet=chgnet:0.3.0 --teacher r2scan_chgnet=chgnet:r2scan --seed 0 --workers "$workers"
umfp data generate runs/teacher-tetrahedral/structures --frames-dir "$frames" --seed 12 --num-decorated 0 \
    --num-u-focus 0 --elements --max-real-structures 0 --num-tetrahedral-compositions 500 --relax-steps 100 \
    --strains 3 --jobs-per-shard 20 --exclude-formulas Li2O Li2O2 Fe3O4 Fe2O3 MgO SiC NaCl Al2O3 LiF \
    --workers "$workers"
umfp data teach runs/teacher-tetrahedral/structures datasets/teacher-tetrahedral \
    --teacher pbe_chgnet=chgnet:0.3.0 --teacher r2scan_chgnet=chgnet:r2scan --seed 0 --workers "$workers"
umfp data generate runs/teacher-solid-solutions/structures --frames-dir "$frames" --seed 13 --num-decorated 0 \
    --num-u-focus 0 --elements --max-real-structures 0 --num-solid-solution-compositions 200 --relax-steps 100 \
    --strains 3 --jobs-per-shard 20 --exclude-formulas Li2O Li2O2 Fe3O4 Fe2O3 MgO SiC NaCl Al2O3 LiF \
    --workers "$workers"
umfp data teach runs/teacher-solid-solutions/structures datasets/teacher-solid-solutions \
    --teacher pbe_chgnet=chgnet:0.3.0 --teacher r2scan_chgnet=chgnet:r2scan --seed 0 --workers "$workers"
umfp data generate runs/teacher-eos/structures --frames-dir "$frames" --seed 14 --num-decorated 0 \
    --num-u-focus 0 --max-real-structures 0 --num-solid-solution-compositions 46 --relax-steps 100 --strains 1 \
    --eos-volumes 0.88 0.92 0.96 1.04 1.08 1.12 --jobs-per-shard 20 \
    --exclude-formulas Li2O Li2O2 Fe3O4 Fe2O3 MgO SiC NaCl Al2O3 LiF --workers "$workers"
umfp data teach runs/teacher-eos/structures datasets/teacher-eos \
    --teacher pbe_chgnet=chgnet:0.3.0 --teacher r2scan_chgnet=chgnet:r2scan --seed 0 --workers "$workers"
