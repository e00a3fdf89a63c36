#!/usr/bin/env bash
# Preprocess the raw datasets into the processed folders every entry point reads (docs/published-behaviour.md §1.3):
#   ./data/NTU-RGB-D-60-AGCN/{xsub,xview}, ./data/NTU-RGB-D-120-AGCN/{xsub,xsetup},
#   ./data/PKU-MMD-v2-AGCN/{xsub,xview}.
#
#   bash scripts/preprocess.sh                  # ntu60 ntu120 pku_v2
#   bash scripts/preprocess.sh ntu60            # one dataset
#   DRY_RUN=1 bash scripts/preprocess.sh        # print the commands only
#
# Raw data (paths relative to the repository; override with the variables):
#   NTU60_RAW       folder of the NTU RGB+D 60 .skeleton files       (default ./raw/nturgb+d_skeletons)
#   NTU60_MISSING   the official list of 302 samples with missing skeletons
#                   (default ./raw/NTU_RGBD_samples_with_missing_skeletons.txt)
#   NTU120_RAW      one folder holding the .skeleton files of both NTU RGB+D 120 parts
#                   (S001-S017 and S018-S032)                        (default ./raw/nturgb+d120_skeletons)
#   NTU120_MISSING  the official list of 535 samples with missing skeletons
#                   (default ./raw/NTU_RGBD120_samples_with_missing_skeletons.txt)
#   PKU_RAW         PKU-MMD phase II: skeleton/, label/, cross_subject_v2.txt, cross_view_v2.txt
#                                                                    (default ./raw/PKU-MMD-v2)
#   GENDATA_WORKERS parsing processes (default 4)
source "$(dirname "$0")/common.sh"

NTU60_RAW="${NTU60_RAW:-./raw/nturgb+d_skeletons}"
NTU60_MISSING="${NTU60_MISSING:-./raw/NTU_RGBD_samples_with_missing_skeletons.txt}"
NTU120_RAW="${NTU120_RAW:-./raw/nturgb+d120_skeletons}"
NTU120_MISSING="${NTU120_MISSING:-./raw/NTU_RGBD120_samples_with_missing_skeletons.txt}"
PKU_RAW="${PKU_RAW:-./raw/PKU-MMD-v2}"
GENDATA_WORKERS="${GENDATA_WORKERS:-4}"

datasets=("$@")
if [ ${#datasets[@]} -eq 0 ]; then
    datasets=(ntu60 ntu120 pku_v2)
fi

for dataset in "${datasets[@]}"; do
    case "$dataset" in
        ntu60 | ntu120 | pku_v2) ;;
        *)
            echo "unknown dataset '$dataset'; expected one of: ntu60 ntu120 pku_v2" >&2
            exit 2
            ;;
    esac
done
check_distinct "dataset %s" "${datasets[@]}"

outputs=()
for dataset in "${datasets[@]}"; do
    case "$dataset" in
        ntu60)
            run "$PYTHON" -m data_gen.ntu_gendata --dataset ntu60 --benchmark xsub xview \
                --data-path "$NTU60_RAW" --ignored-sample-path "$NTU60_MISSING" \
                --out-folder ./data/NTU-RGB-D-60-AGCN --workers "$GENDATA_WORKERS"
            outputs+=(./data/NTU-RGB-D-60-AGCN/{xsub,xview}/)
            ;;
        ntu120)
            run "$PYTHON" -m data_gen.ntu_gendata --dataset ntu120 --benchmark xsub xsetup \
                --data-path "$NTU120_RAW" --ignored-sample-path "$NTU120_MISSING" \
                --out-folder ./data/NTU-RGB-D-120-AGCN --workers "$GENDATA_WORKERS"
            outputs+=(./data/NTU-RGB-D-120-AGCN/{xsub,xsetup}/)
            ;;
        pku_v2)
            run "$PYTHON" -m data_gen.pku_gendata \
                --data-path "$PKU_RAW" --out-folder ./data/PKU-MMD-v2-AGCN --workers "$GENDATA_WORKERS"
            outputs+=(./data/PKU-MMD-v2-AGCN/{xsub,xview}/)
            ;;
    esac
done

finish "${outputs[*]}"
